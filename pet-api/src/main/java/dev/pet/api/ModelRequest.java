package dev.pet.api;

import java.util.Map;
import java.util.Objects;

/**
 * What to load: {@code nameOrPath} is a preset name ({@code gpt2-tiny}) or a model directory / ONNX file;
 * {@code overrides} are config keys that replace the checkpoint's ({@code seq_length}, ...); {@code seed} drives
 * random initialisation when no weights are given; {@code form} says which graph the caller will run.
 */
public record ModelRequest(String nameOrPath, Map<String, Object> overrides, long seed, GraphForm form) {
    /**
     * The graph a provider builds. Both forms carry the same weights (initializer names) and the same anatomy, so a
     * PET method injects into either the same way and an adapter trained on one applies to the other.
     */
    public enum GraphForm {
        /** {@code input_ids}, {@code attention_mask} in, {@code logits} out: training and evaluation. */
        TRAINING,
        /**
         * The with-past inference graph, in Hugging Face Optimum naming: inputs {@code input_ids},
         * {@code attention_mask} [batch, past + sequence], {@code position_ids} and
         * {@code past_key_values.{i}.key/value} [batch, kv_heads, past, head_dim]; outputs {@code logits} and
         * {@code present.{i}.key/value}. Generation and serving run it with a key/value cache.
         */
        GENERATION
    }

    public ModelRequest {
        Objects.requireNonNull(nameOrPath, "nameOrPath");
        overrides = overrides == null ? Map.of() : Map.copyOf(overrides);
        form = form == null ? GraphForm.TRAINING : form;
    }

    /** A request for the training form. */
    public ModelRequest(String nameOrPath, Map<String, Object> overrides, long seed) {
        this(nameOrPath, overrides, seed, GraphForm.TRAINING);
    }

    public static ModelRequest of(String nameOrPath) {
        return new ModelRequest(nameOrPath, Map.of(), 0);
    }

    public ModelRequest withForm(GraphForm f) {
        return new ModelRequest(nameOrPath, overrides, seed, f);
    }
}
