package dev.pet.gpt2;

import dev.pet.api.MemoryBudget;
import dev.pet.api.PetException;
import dev.pet.hf.StateDict;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * The float32 parameters of a GPT-2 model, keyed by Hugging Face state-dict names ({@code transformer.wte.weight},
 * {@code transformer.h.0.attn.c_attn.weight}, ...). Conv1D weights are stored [in, out] as in Hugging Face. The
 * LM head is tied to {@code transformer.wte.weight} and has no tensor of its own. Immutable.
 */
public final class Gpt2Weights extends StateDict<Gpt2Config> {
    /** Prefix of the transformer's parameters in {@code GPT2LMHeadModel}'s state dict. */
    public static final String PREFIX = "transformer.";

    private Gpt2Weights(Gpt2Config config, Map<String, Tensor> tensors) {
        super("GPT-2", config, tensors);
    }

    /** A copy with one tensor replaced (same name and shape); the replacement is converted to float32. */
    public Gpt2Weights with(String name, Tensor tensor) {
        return of(config(), replacing(name, tensor), "replacement");
    }

    /** The canonical parameter names of a config, in Hugging Face state-dict order. */
    public static List<String> names(Gpt2Config c) {
        return List.copyOf(expectedShapes(c).keySet());
    }

    /** Canonical name to shape for every parameter of a config. */
    public static Map<String, long[]> expectedShapes(Gpt2Config c) {
        long e = c.nEmbd();
        long inner = c.nInner();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(PREFIX + "wte.weight", new long[] {c.vocabSize(), e});
        m.put(PREFIX + "wpe.weight", new long[] {c.nPositions(), e});
        for (int i = 0; i < c.nLayer(); i++) {
            String h = PREFIX + "h." + i + ".";
            m.put(h + "ln_1.weight", new long[] {e});
            m.put(h + "ln_1.bias", new long[] {e});
            m.put(h + "attn.c_attn.weight", new long[] {e, 3 * e});
            m.put(h + "attn.c_attn.bias", new long[] {3 * e});
            m.put(h + "attn.c_proj.weight", new long[] {e, e});
            m.put(h + "attn.c_proj.bias", new long[] {e});
            m.put(h + "ln_2.weight", new long[] {e});
            m.put(h + "ln_2.bias", new long[] {e});
            m.put(h + "mlp.c_fc.weight", new long[] {e, inner});
            m.put(h + "mlp.c_fc.bias", new long[] {inner});
            m.put(h + "mlp.c_proj.weight", new long[] {inner, e});
            m.put(h + "mlp.c_proj.bias", new long[] {e});
        }
        m.put(PREFIX + "ln_f.weight", new long[] {e});
        m.put(PREFIX + "ln_f.bias", new long[] {e});
        return m;
    }

    /**
     * Weights from a state dict: names with or without the {@code transformer.} prefix; float32, float16, bfloat16
     * or float64 tensors (converted to float32); the causal-mask buffers {@code attn.bias} / {@code attn.masked_bias}
     * ignored; {@code lm_head.weight} accepted only when equal to the token embedding (GPT-2 ties them).
     *
     * @param source names the checkpoint in error messages
     */
    public static Gpt2Weights of(Gpt2Config config, Map<String, Tensor> stateDict, String source) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(stateDict, "stateDict");
        String src = source == null ? "state dict" : source;
        // Before listing the expected tensors: a config claiming n_layer 1e9 must not make us build that list.
        if (12L * config.nLayer() > stateDict.size()) {
            throw new PetException(src + ": the config says n_layer " + config.nLayer() + ", which needs "
                    + 12L * config.nLayer() + " block tensors, but the checkpoint holds " + stateDict.size()
                    + " tensors in all; the config does not describe these weights");
        }
        Map<String, long[]> expected = expectedShapes(config);
        Map<String, Tensor> found = new LinkedHashMap<>();
        Tensor lmHead = null;
        TreeSet<String> unexpected = new TreeSet<>();
        for (Map.Entry<String, Tensor> en : stateDict.entrySet()) {
            String name = en.getKey();
            if (name.equals("lm_head.weight")) {
                lmHead = en.getValue();
                continue;
            }
            String canonical = name.startsWith(PREFIX) ? name : PREFIX + name;
            if (canonical.endsWith(".attn.bias") || canonical.endsWith(".attn.masked_bias")) {
                continue;
            }
            if (!expected.containsKey(canonical)) {
                unexpected.add(name);
                continue;
            }
            if (found.put(canonical, en.getValue()) != null) {
                throw new PetException(src + ": tensor '" + canonical + "' appears twice (with and without the '"
                        + PREFIX + "' prefix)");
            }
        }
        if (!unexpected.isEmpty()) {
            throw new PetException(src + ": unexpected tensors " + unexpected + " for a GPT-2 with n_layer="
                    + config.nLayer() + " (expected names like '" + PREFIX + "h.0.attn.c_attn.weight')");
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> en : expected.entrySet()) {
            String name = en.getKey();
            Tensor t = found.get(name);
            if (t == null) {
                throw new PetException(src + ": missing tensor '" + name + "' (expected shape "
                        + Arrays.toString(en.getValue()) + ")");
            }
            checkShape(src, name, en.getValue(), t);
            out.put(name, toFloat32(src, name, t));
        }
        if (lmHead != null) {
            checkShape(src, "lm_head.weight", expected.get(PREFIX + "wte.weight"), lmHead);
            // Compared as bytes: no float[] copies of a vocabulary-sized matrix.
            if (!toFloat32(src, "lm_head.weight", lmHead).buffer().equals(out.get(PREFIX + "wte.weight").buffer())) {
                throw new PetException(src + ": 'lm_head.weight' differs from '" + PREFIX + "wte.weight'; GPT-2 "
                        + "ties the LM head to the token embedding and untied heads are not supported");
            }
        }
        return new Gpt2Weights(config, out);
    }

    private static Tensor toFloat32(String src, String name, Tensor t) {
        DataType d = t.dataType();
        if (d == DataType.FLOAT) {
            return t;
        }
        if (!d.isFloatingPoint()) {
            throw new PetException(src + ": tensor '" + name + "' has element type " + d
                    + ", expected FLOAT, FLOAT16, BFLOAT16 or DOUBLE");
        }
        return t.castTo(DataType.FLOAT);
    }

    /**
     * Seeded random weights with Hugging Face's GPT-2 scheme ({@code GPT2PreTrainedModel._init_weights}):
     * embeddings and projection weights normal(0, initializer_range), biases 0, LayerNorm weight 1 and bias 0,
     * and the residual projections {@code attn.c_proj.weight} / {@code mlp.c_proj.weight} normal(0,
     * initializer_range/√(2·n_layer)). Each tensor draws from its own stream derived from {@code seed} and its
     * name, so the result does not depend on thread scheduling.
     */
    public static Gpt2Weights random(Gpt2Config config, long seed) {
        Objects.requireNonNull(config, "config");
        MemoryBudget.requireWeights("GPT-2 with n_layer " + config.nLayer() + ", n_embd " + config.nEmbd()
                + ", n_inner " + config.nInner() + ", vocab_size " + config.vocabSize(), config.parameterCount(),
                "n_layer", config.parametersPerLayer());
        double std = config.initializerRange();
        double residualStd = std / Math.sqrt(2.0 * config.nLayer());
        return new Gpt2Weights(config, seededRandom(expectedShapes(config), seed, name ->
                name.endsWith("ln_1.weight") || name.endsWith("ln_2.weight") || name.endsWith("ln_f.weight")
                        ? Init.constant(1) : name.endsWith(".bias") ? Init.constant(0)
                        : Init.normal(name.endsWith("c_proj.weight") ? residualStd : std)));
    }
}
