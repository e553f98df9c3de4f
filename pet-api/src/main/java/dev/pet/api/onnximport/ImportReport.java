package dev.pet.api.onnximport;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What an ONNX import recognised in a graph and what it could not. Model-level parts are {@code input_ids},
 * {@code attention_mask}, {@code logits}, the embedding, the LM head, {@code num_heads} and past key/value inputs;
 * per-layer parts are the family's linear modules, its norms and the attention points ({@code key}, {@code value},
 * {@code attention_bias}, {@code attention_output}, {@code mlp_output}, {@code residual_after_attention},
 * {@code residual_after_mlp}), named as in {@link dev.pet.api.LayerAnatomy}.
 *
 * @param family       the model family the graph was read as ({@code gpt2}, ...)
 * @param source       where the model came from
 * @param layerPrefix  how layers are named in {@link #describe()} ({@code transformer.h.})
 * @param recognised   model-level parts found, each with how it was found
 * @param unrecognised model-level parts not found, each with why
 * @param layers       per-layer findings, by block index
 * @param notes        things worth knowing that are not failures (rewrites made, linears outside the blocks)
 */
public record ImportReport(String family, String source, String layerPrefix, Map<String, String> recognised,
        Map<String, String> unrecognised, List<LayerReport> layers, List<String> notes) {

    public ImportReport {
        Objects.requireNonNull(family, "family");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(layerPrefix, "layerPrefix");
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

    /** This report with one more model-level part, found ({@code how}) or not ({@code why}). */
    public ImportReport with(String part, boolean found, String howOrWhy) {
        Map<String, String> rec = new LinkedHashMap<>(recognised);
        Map<String, String> unrec = new LinkedHashMap<>(unrecognised);
        (found ? rec : unrec).put(part, howOrWhy);
        return new ImportReport(family, source, layerPrefix, rec, unrec, layers, notes);
    }

    /** True when every model-level and per-layer part was recognised. */
    public boolean complete() {
        return unrecognised.isEmpty() && layers.stream().allMatch(l -> l.unrecognised().isEmpty());
    }

    /** The per-layer parts not found in any layer ({@code key}, {@code attention_bias}, ...). */
    public List<String> missingLayerParts() {
        return layers.stream().flatMap(l -> l.unrecognised().keySet().stream()).distinct().toList();
    }

    /** A multi-line, human-readable account, unrecognised parts first. */
    public String describe() {
        StringBuilder sb = new StringBuilder(family).append(" ONNX import of ").append(source).append(": ")
                .append(complete() ? "every part recognised" : "some parts not recognised").append('\n');
        unrecognised.forEach((k, v) -> sb.append("  NOT FOUND ").append(k).append(": ").append(v).append('\n'));
        for (LayerReport l : layers) {
            l.unrecognised().forEach((k, v) -> sb.append("  NOT FOUND ").append(layerPrefix).append(l.index())
                    .append('.').append(k).append(": ").append(v).append('\n'));
        }
        recognised.forEach((k, v) -> sb.append("  found ").append(k).append(": ").append(v).append('\n'));
        for (LayerReport l : layers) {
            sb.append("  ").append(layerPrefix).append(l.index()).append(": found ")
                    .append(l.recognised().keySet()).append('\n');
        }
        notes.forEach(n -> sb.append("  note: ").append(n).append('\n'));
        return sb.toString();
    }

    @Override
    public String toString() {
        return describe();
    }
}
