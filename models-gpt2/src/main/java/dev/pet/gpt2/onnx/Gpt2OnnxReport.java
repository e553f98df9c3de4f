package dev.pet.gpt2.onnx;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What {@link Gpt2OnnxImporter} recognised in an ONNX file and what it could not. Parts are named as in
 * {@link dev.pet.api.ModelAnatomy}: model-level parts are {@code input_ids}, {@code attention_mask}, {@code logits},
 * {@code transformer.wte}, {@code transformer.wpe}, {@code lm_head}, {@code num_heads}; per-layer parts are the
 * linear modules ({@code attn.c_attn}, {@code attn.c_proj}, {@code mlp.c_fc}, {@code mlp.c_proj}), the layer norms
 * ({@code ln_1}, {@code ln_2}) and the attention points ({@code key}, {@code value}, {@code attention_bias},
 * {@code attention_output}, {@code mlp_output}, {@code residual_after_attention}, {@code residual_after_mlp}).
 *
 * @param source       where the model came from
 * @param recognised   model-level parts found, each with how it was found
 * @param unrecognised model-level parts not found, each with why
 * @param layers       per-layer findings, by block index
 * @param notes        things worth knowing that are not failures (rewrites made, linears outside the blocks)
 */
public record Gpt2OnnxReport(String source, Map<String, String> recognised, Map<String, String> unrecognised,
        List<LayerReport> layers, List<String> notes) {

    public Gpt2OnnxReport {
        Objects.requireNonNull(source, "source");
        recognised = Collections.unmodifiableMap(new LinkedHashMap<>(recognised));
        unrecognised = Collections.unmodifiableMap(new LinkedHashMap<>(unrecognised));
        layers = List.copyOf(layers);
        notes = List.copyOf(notes);
    }

    /**
     * Findings for one transformer block.
     *
     * @param index        block index
     * @param recognised   parts found, each with the value, initializer or node it resolved to
     * @param unrecognised parts not found, each with why
     */
    public record LayerReport(int index, Map<String, String> recognised, Map<String, String> unrecognised) {
        public LayerReport {
            recognised = Collections.unmodifiableMap(new LinkedHashMap<>(recognised));
            unrecognised = Collections.unmodifiableMap(new LinkedHashMap<>(unrecognised));
        }
    }

    /** True when every model-level and per-layer part was recognised. */
    public boolean complete() {
        return unrecognised.isEmpty() && layers.stream().allMatch(l -> l.unrecognised().isEmpty());
    }

    /** A multi-line, human-readable account, unrecognised parts first. */
    public String describe() {
        StringBuilder sb = new StringBuilder("GPT-2 ONNX import of ").append(source).append(": ")
                .append(complete() ? "every part recognised" : "some parts not recognised").append('\n');
        unrecognised.forEach((k, v) -> sb.append("  NOT FOUND ").append(k).append(": ").append(v).append('\n'));
        for (LayerReport l : layers) {
            l.unrecognised().forEach((k, v) -> sb.append("  NOT FOUND h.").append(l.index()).append('.').append(k)
                    .append(": ").append(v).append('\n'));
        }
        recognised.forEach((k, v) -> sb.append("  found ").append(k).append(": ").append(v).append('\n'));
        for (LayerReport l : layers) {
            sb.append("  h.").append(l.index()).append(": found ").append(l.recognised().keySet()).append('\n');
        }
        notes.forEach(n -> sb.append("  note: ").append(n).append('\n'));
        return sb.toString();
    }

    @Override
    public String toString() {
        return describe();
    }
}
