package dev.pet.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A model's structure, described by its provider so that PET methods inject nodes without guessing names.
 *
 * @param layers      per-block anatomy, in order
 * @param linears     every linear projection a method can target, in graph order
 * @param hiddenSize  model width
 * @param numHeads    attention (query) heads per block
 * @param headDim     width of one head
 * @param inputIds    graph input of token ids [batch, sequence]
 * @param attentionMask graph input of the padding mask [batch, keyLength], or null when the graph has none
 * @param positionIds value holding the positions of the input tokens (int64, [batch or 1, sequence]) as the position
 *                    encoding reads them (learned position embeddings, rotary angles) and nothing else reads them;
 *                    methods that put virtual tokens before the input (prefix tuning) shift it, so the real tokens
 *                    are numbered after the virtual ones as PEFT and Hugging Face models number them. Null when the
 *                    model has no position encoding the provider could name.
 * @param logits      graph output of logits [batch, sequence, vocabulary]; a linear module producing it is the
 *                    output head, which {@code all-linear} leaves out
 * @param numKeyValueHeads key/value heads per block (fewer than {@code numHeads} with grouped-query attention);
 *                    the layers' keys and values have this many heads
 * @param defaultTargetModules the family's {@code target_modules} when a config gives none (PEFT's per-model-type
 *                    defaults, {@code c_attn} for GPT-2, {@code q_proj, v_proj} for Llama); empty when the family
 *                    has none, which makes {@code target_modules} required
 */
public record ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
        long headDim, String inputIds, String attentionMask, String positionIds, String logits,
        long numKeyValueHeads, List<String> defaultTargetModules) {
    public ModelAnatomy {
        layers = List.copyOf(layers);
        linears = List.copyOf(linears);
        defaultTargetModules = defaultTargetModules == null ? List.of() : List.copyOf(defaultTargetModules);
        if (numKeyValueHeads <= 0 || numHeads % numKeyValueHeads != 0) {
            throw new PetException("model anatomy: numKeyValueHeads (" + numKeyValueHeads + ") must divide numHeads ("
                    + numHeads + ")");
        }
    }

    /** Multi-head attention (as many key/value heads as query heads), without default target modules. */
    public ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
            long headDim, String inputIds, String attentionMask, String positionIds, String logits) {
        this(layers, linears, hiddenSize, numHeads, headDim, inputIds, attentionMask, positionIds, logits, numHeads);
    }

    /** Without default target modules. */
    public ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
            long headDim, String inputIds, String attentionMask, String positionIds, String logits,
            long numKeyValueHeads) {
        this(layers, linears, hiddenSize, numHeads, headDim, inputIds, attentionMask, positionIds, logits,
                numKeyValueHeads, List.of());
    }

    /** This anatomy with the family's default {@code target_modules}. */
    public ModelAnatomy withDefaultTargetModules(List<String> targets) {
        return new ModelAnatomy(layers, linears, hiddenSize, numHeads, headDim, inputIds, attentionMask, positionIds,
                logits, numKeyValueHeads, targets);
    }

    /** Per-layer parts in {@link LayerAnatomy} order, as {@code pet inspect} and error messages name them. */
    public static final List<String> LAYER_PARTS = List.of("key", "value", "attention_bias", "attention_output",
            "mlp_output", "residual_after_attention", "residual_after_mlp");

    /** Layer part (one of {@link #LAYER_PARTS}) → indices of the layers where it was not found. */
    public Map<String, List<Integer>> missingLayerParts() {
        Map<String, List<Integer>> missing = new LinkedHashMap<>();
        for (LayerAnatomy l : layers) {
            List<String> values = List.of(String.valueOf(l.key()), String.valueOf(l.value()),
                    String.valueOf(l.attentionBias()), String.valueOf(l.attentionOutput()),
                    String.valueOf(l.mlpOutput()), String.valueOf(l.residualAfterAttention()),
                    String.valueOf(l.residualAfterMlp()));
            for (int i = 0; i < LAYER_PARTS.size(); i++) {
                if (values.get(i).equals("null")) {
                    missing.computeIfAbsent(LAYER_PARTS.get(i), k -> new ArrayList<>()).add(l.index());
                }
            }
        }
        return missing;
    }

    /**
     * Fails, naming each missing part and its layers, unless every layer has {@code parts}; {@code method} says who
     * needs them ({@code prefix tuning}). {@code importReport} (the import's account, or null) is appended.
     */
    public void requireLayerParts(String method, String importReport, String... parts) {
        Map<String, List<Integer>> missing = missingLayerParts();
        List<String> lacking = new ArrayList<>();
        for (String p : parts) {
            if (missing.containsKey(p)) {
                lacking.add(p + " (layers " + missing.get(p) + ")");
            }
        }
        if (layers.isEmpty()) {
            lacking.add("transformer blocks (none found)");
        }
        if (!lacking.isEmpty()) {
            throw new PetException(method + " needs " + List.of(parts) + " in every transformer block, but the model's "
                    + "anatomy lacks " + String.join(", ", lacking) + "; methods that need only linear modules "
                    + "(LoRA) still work" + (importReport == null ? "" : "\n" + importReport));
        }
    }

    /** A few lines for people: linear modules by kind, layer parts found and missing. */
    public List<String> describe() {
        List<String> lines = new ArrayList<>();
        Map<String, List<LinearModule>> kinds = new LinkedHashMap<>();
        for (LinearModule m : linears) {
            String kind = m.layer() < 0 ? m.path() : m.path().replaceFirst("\\." + m.layer() + "\\.", ".*.");
            kinds.computeIfAbsent(kind, k -> new ArrayList<>()).add(m);
        }
        lines.add(linears.size() + " linear modules, " + layers.size() + " blocks, hidden " + hiddenSize + ", heads "
                + numHeads);
        kinds.forEach((kind, ms) -> lines.add("linear " + kind + " x" + ms.size() + " " + ms.get(0).inFeatures()
                + "->" + ms.get(0).outFeatures()));
        Map<String, List<Integer>> missing = missingLayerParts();
        TreeSet<String> found = new TreeSet<>(LAYER_PARTS);
        found.removeAll(missing.keySet());
        lines.add("layer parts found in every block: " + LAYER_PARTS.stream().filter(found::contains).toList());
        missing.forEach((part, at) -> lines.add("MISSING " + part + " in blocks " + at));
        return lines;
    }
}
