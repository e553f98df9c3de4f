package dev.pet.api;

import dev.pet.onnx.ir.Model;
import java.util.Map;
import java.util.Objects;

/**
 * A loaded base model: its forward graph (weights as initializers, named as in the Hugging Face state dict), its
 * anatomy, its tokenizer and its configuration.
 *
 * @param providerId  id of the provider that loaded it, e.g. {@code gpt2}
 * @param name        preset name or source path
 * @param model       the forward ONNX model; callers copy it before transforming
 * @param anatomy     where a PET method can attach
 * @param tokenizer   the model's tokenizer
 * @param config      the effective configuration as plain keys ({@code n_layer}, {@code n_embd}, ...)
 * @param vocabSize   vocabulary size
 * @param maxPositions longest sequence the model accepts
 */
public record PretrainedModel(String providerId, String name, Model model, ModelAnatomy anatomy,
        TextTokenizer tokenizer, Map<String, Object> config, long vocabSize, long maxPositions) {
    /** Config key under which an imported ONNX model keeps its {@code ImportReport} text (what was and was not found). */
    public static final String IMPORT_REPORT = "onnx_import_report";

    public PretrainedModel {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(anatomy, "anatomy");
        config = Map.copyOf(config);
    }

    /** The same model (name, anatomy, tokenizer, sizes) with another graph and configuration. */
    public PretrainedModel withModel(Model other, Map<String, Object> otherConfig) {
        return new PretrainedModel(providerId, name, other, anatomy, tokenizer, otherConfig, vocabSize, maxPositions);
    }
}
