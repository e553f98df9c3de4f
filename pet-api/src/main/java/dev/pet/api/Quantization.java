package dev.pet.api;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.quant.QuantizedLinears;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A quantized frozen base (QLoRA-style): which linear modules of a model are quantized and how.
 * {@link #apply} quantizes a pretrained model's chosen linear weights before a PET method is injected, so every
 * graph made from it (training, evaluation, generation, serving) computes with the quantized weights and no float
 * copy of them stays referenced; {@link #dequantize} restores float weights (the dequantized values) for exports
 * and merges. Adapters do not depend on it: an adapter trained on a quantized base loads on a float one and the
 * other way round.
 *
 * @param spec    bits, block size, symmetry, compute
 * @param modules which linear modules: names (exact or dotted suffix) or a regex, with exclusions, by PEFT's rules
 *                ({@link TargetModules}); {@code all-linear} (the default) is every linear but the output head
 * @param lmHead  whether the output head is quantized too; a head tied to the token embedding gets its own quantized
 *                copy ({@link #LM_HEAD_WEIGHT}) while the embedding lookup keeps reading the float table, of which
 *                only the looked-up rows are ever touched, unless {@code embeddings} is set too
 * @param embeddings whether the token-embedding table is quantized too (kernel matmul_nbits only): lookups go through
 *                ONNX Runtime's GatherBlockQuantized ({@link QuantizedLinears#quantizeEmbedding}); with a tied head
 *                also quantized, both read one quantized copy and no float table is left
 */
public record Quantization(QuantSpec spec, TargetModules modules, boolean lmHead, boolean embeddings) {
    /** Key under which a quantized model's {@link PretrainedModel#config()} records {@link QuantSpec#describe()}. */
    public static final String CONFIG_KEY = "pet_quantization";
    /** The name a tied output head's weight gets when it is quantized apart from the embedding it shares. */
    public static final String LM_HEAD_WEIGHT = "lm_head.weight";

    public Quantization {
        Objects.requireNonNull(spec, "spec");
        modules = modules == null ? TargetModules.named(List.of(TargetModules.ALL_LINEAR)) : modules;
    }

    /** The chosen linear modules without the output head. */
    public Quantization(QuantSpec spec, TargetModules modules) {
        this(spec, modules, false, false);
    }

    /** The chosen linear modules and, when {@code lmHead}, the output head; the embedding lookup stays float. */
    public Quantization(QuantSpec spec, TargetModules modules, boolean lmHead) {
        this(spec, modules, lmHead, false);
    }

    /**
     * The modules to quantize from the {@code include} / {@code exclude} options as a config gives them: a string
     * is a full-match regex ({@code all-linear}, the default, is every linear but the output head), a list holds
     * module names (exact or dotted suffix).
     */
    public static TargetModules modules(Object include, Object exclude) {
        String regex = null;
        List<String> names = List.of(TargetModules.ALL_LINEAR);
        if (include instanceof String s && !s.equalsIgnoreCase(TargetModules.ALL_LINEAR)) {
            regex = s;
            names = null;
        } else if (include != null && !(include instanceof String)) {
            names = strings("include", include);
        }
        String excludeRegex = exclude instanceof String s ? s : null;
        List<String> excludeNames = exclude == null || exclude instanceof String ? List.of() : strings("exclude", exclude);
        try {
            return new TargetModules(regex, names, excludeRegex, excludeNames, List.of(), List.of());
        } catch (PetConfigException e) {
            throw new PetConfigException("quantization", e.key().equals("target_modules") ? "include" : "exclude",
                    e.problem());
        }
    }

    private static List<String> strings(String key, Object v) {
        if (v instanceof List<?> l && l.stream().allMatch(String.class::isInstance)) {
            return l.stream().map(String.class::cast).toList();
        }
        throw new PetConfigException("quantization", key, "must be a regex string or a list of module names, found "
                + v);
    }

    /** The settings as a config writes them (run records compare these on resume). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bits", spec.bits());
        if (!spec.perChannel()) {
            m.put("block_size", spec.blockSize());
        }
        m.put("symmetric", spec.symmetric());
        m.put("compute", spec.compute().toString());
        m.put("kernel", spec.kernel().toString());
        m.put("include", modules.targetModulesValue());
        m.put("exclude", modules.excludeRegex() != null ? modules.excludeRegex() : modules.excludeNames());
        m.put("lm_head", lmHead);
        if (embeddings) {
            // Written only when set: runs recorded before the option existed keep their config hash and resume.
            m.put("embeddings", true);
        }
        return m;
    }

    /** The quantized model and what was quantized. */
    public record Applied(PretrainedModel model, QuantizedLinears.Result result) {
    }

    /**
     * A copy of {@code base} whose chosen linear weights are quantized. {@code training} adds each weight's
     * transposed quantized copy, which the input gradient {@code dX = dY · W} multiplies with.
     *
     * @throws PetConfigException under the option names {@code include} / {@code exclude} when the selection
     *                            matches nothing
     */
    public Applied apply(PretrainedModel base, boolean training) {
        List<LinearModule> chosen;
        try {
            chosen = modules.select("quantization", base);
        } catch (PetConfigException e) {
            throw new PetConfigException("quantization", e.key().equals("target_modules") ? "include" : e.key(),
                    e.problem());
        }
        Set<String> weights = new java.util.LinkedHashSet<>();
        chosen.forEach(m -> weights.add(m.weight()));
        Model m = base.model().copy();
        String table = null;
        if (embeddings) {
            try {
                QuantizedLinears.requireLookupKernel(spec);
            } catch (QuantSpec.Invalid e) {
                throw settingError(e);
            }
            table = embeddingTable(m.graph(), base.anatomy().inputIds(), base.vocabSize());
            if (!lmHead && m.graph().requireValue(table).uses().stream().anyMatch(n -> !n.opType().equals("Gather"))) {
                throw new PetConfigException("quantization", "embeddings", "the table '" + table + "' is also the"
                        + " float output head's weight (tied): quantizing only the lookup would keep the float table"
                        + " and add a quantized copy; set lm_head: true as well");
            }
        }
        String head = null;
        if (lmHead) {
            head = untiedHead(m.graph(), base.anatomy().logits());
            weights.add(head);
        }
        // A tied head quantized along the embedding width holds the same codes the lookup needs.
        boolean tied = table != null && head != null && m.graph().initializer(head) == m.graph().initializer(table);
        QuantizedLinears.Result r;
        try {
            r = QuantizedLinears.quantize(m, weights, spec, training);
        } catch (OnnxException e) {
            throw new PetException(base.name() + ": " + e.getMessage()
                    + " (leave it out with quantization.exclude)", e);
        }
        if (table != null) {
            String shared = tied ? head : null;
            QuantizedLinears.Layer sameAs = r.layers().stream().filter(l -> l.weight().equals(shared)).findFirst()
                    .orElse(null);
            List<QuantizedLinears.Layer> layers = new java.util.ArrayList<>(r.layers());
            try {
                layers.add(QuantizedLinears.quantizeEmbedding(m, table, spec, sameAs));
            } catch (QuantSpec.Invalid e) {
                throw settingError(e);
            }
            r = new QuantizedLinears.Result(spec, layers);
        }
        Map<String, Object> config = new LinkedHashMap<>(base.config());
        config.put(CONFIG_KEY, spec.describe());
        return new Applied(base.withModel(m, config), r);
    }

    /** A quantization setting the model cannot take, under its config name. */
    private static PetConfigException settingError(QuantSpec.Invalid e) {
        return new PetConfigException("quantization", e.key(), e.problem());
    }

    /**
     * {@code merged}, a model of {@code base}'s structure with float weights (a merged export: the adapter folded into
     * the dequantized weights), with the same linears quantized again by these settings, for inference (no transposed
     * copies). The merged weights are quantized afresh, so they carry a new rounding on top of the adapter's update.
     */
    public Model requantize(PretrainedModel base, Model merged) {
        Objects.requireNonNull(merged, "merged");
        if (QuantizedLinears.hasQuantizedWeights(merged)) {
            throw new PetException(base.name() + ": the merged model still has quantized weights; dequantize it first");
        }
        return apply(base.withModel(merged, base.config()), false).model().model();
    }

    /**
     * The weight of the linear producing {@code logits} (through reshapes), read by that linear alone: a weight
     * shared with another reader (the token embedding of a tied head) is given to the head under
     * {@link #LM_HEAD_WEIGHT} as a second name over the same data, so only the head's reads are quantized.
     */
    static String untiedHead(Graph g, String logits) {
        Value v = g.requireValue(logits);
        Node head = v.producer();
        while (head != null && HEAD_RESHAPES.contains(head.opType()) && head.domain().isEmpty()) {
            head = head.input(0).producer();
        }
        if (head == null || !head.domain().isEmpty() || !(head.opType().equals("MatMul")
                || head.opType().equals("Gemm")) || head.inputCount() < 2 || g.initializer(head.input(1).name()) == null) {
            throw new PetConfigException("quantization", "lm_head", "the logits '" + logits + "' are not made by a"
                    + " MatMul or Gemm over a weight initializer" + (head == null ? "" : " (found " + head.describe()
                    + ")") + ", so there is no output head to quantize");
        }
        Value weight = head.input(1);
        if (weight.uses().size() == 1) {
            return weight.name();
        }
        String name = g.uniqueName(LM_HEAD_WEIGHT);
        head.setInput(1, g.setInitializer(name, g.initializer(weight.name())));
        return name;
    }

    private static final Set<String> HEAD_RESHAPES = Set.of("Reshape", "Flatten", "Identity", "Cast");

    /**
     * The token-embedding table: the 2-D initializer with a row per token that a Gather along axis 0 reads, indexed
     * by the input ids (directly or through casts and reshapes).
     */
    static String embeddingTable(Graph g, String inputIds, long vocabSize) {
        java.util.ArrayDeque<Value> todo = new java.util.ArrayDeque<>(List.of(g.requireValue(inputIds)));
        Set<Value> seen = new HashSet<>();
        while (!todo.isEmpty()) {
            Value ids = todo.poll();
            if (!seen.add(ids)) {
                continue;
            }
            for (Node n : ids.uses()) {
                if (!n.domain().isEmpty()) {
                    continue;
                }
                if (n.opType().equals("Gather") && n.inputCount() == 2 && n.input(1) == ids
                        && n.intAttr("axis", 0) == 0) {
                    var t = g.initializer(n.input(0).name());
                    if (t != null && t.rank() == 2 && t.dim(0) == vocabSize) {
                        return n.input(0).name();
                    }
                } else if (INDEX_RESHAPES.contains(n.opType())) {
                    todo.add(n.output(0));
                }
            }
        }
        throw new PetConfigException("quantization", "embeddings", "no token lookup found: no Gather of a table with"
                + " a row for each of the " + vocabSize + " tokens reads the input ids '" + inputIds + "'");
    }

    private static final Set<String> INDEX_RESHAPES = Set.of("Reshape", "Flatten", "Identity", "Cast", "Squeeze",
            "Unsqueeze");

    /** {@code model} with float weights restored where quantized (a copy; see {@link QuantizedLinears#dequantize}). */
    public static Model dequantize(Model model, ModelAnatomy anatomy) {
        Set<String> outIn = new HashSet<>();
        anatomy.linears().stream().filter(l -> !l.weightInOut()).forEach(l -> outIn.add(l.weight()));
        Model copy = model.copy();
        QuantizedLinears.dequantize(copy, outIn::contains);
        return copy;
    }

    /**
     * A PET model on a quantized base with its base and PET graphs dequantized, so merges and exports see float
     * weights equal to what the quantized model computed with; a model without quantized weights is returned as is.
     */
    public static PetModel dequantize(PetModel p) {
        if (!QuantizedLinears.hasQuantizedWeights(p.model())) {
            return p;
        }
        PretrainedModel b = p.base();
        Map<String, Object> config = new LinkedHashMap<>(b.config());
        config.remove(CONFIG_KEY);
        return new PetModel(b.withModel(dequantize(b.model(), b.anatomy()), config), dequantize(p.model(),
                b.anatomy()), p.trainables(), p.config());
    }
}
