package dev.pet.llama;

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
import java.util.regex.Pattern;

/**
 * The parameters of a Llama-family model under Hugging Face state-dict names ({@code model.embed_tokens.weight},
 * {@code model.layers.0.self_attn.q_proj.weight} [out, in], ..., {@code lm_head.weight} when untied). Tensors keep
 * the element type they were read with (float32, float16 or bfloat16); graphs convert them. Immutable.
 */
public final class LlamaWeights extends StateDict<LlamaConfig> {
    /** Rotary buffers that older checkpoints saved; they are recomputed from the config. */
    private static final Pattern IGNORED = Pattern.compile("model\\.layers\\.\\d+\\.self_attn\\.rotary_emb\\.inv_freq");

    private LlamaWeights(LlamaConfig config, Map<String, Tensor> tensors) {
        super("Llama", config, tensors);
    }

    /** The state-dict names of a config, in Hugging Face order. */
    public static List<String> names(LlamaConfig c) {
        return List.copyOf(expectedShapes(c).keySet());
    }

    /** State-dict name to shape for every parameter of a config. */
    public static Map<String, long[]> expectedShapes(LlamaConfig c) {
        long e = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long inner = c.intermediateSize();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", new long[] {c.vocabSize(), e});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String l = "model.layers." + i + ".";
            m.put(l + "input_layernorm.weight", new long[] {e});
            linear(m, l + "self_attn.q_proj", q, e, c.attentionBias());
            linear(m, l + "self_attn.k_proj", kv, e, c.attentionBias());
            linear(m, l + "self_attn.v_proj", kv, e, c.attentionBias());
            linear(m, l + "self_attn.o_proj", e, q, c.outputBias());
            m.put(l + "post_attention_layernorm.weight", new long[] {e});
            linear(m, l + "mlp.gate_proj", inner, e, c.mlpBias());
            linear(m, l + "mlp.up_proj", inner, e, c.mlpBias());
            linear(m, l + "mlp.down_proj", e, inner, c.mlpBias());
        }
        m.put("model.norm.weight", new long[] {e});
        if (!c.tieWordEmbeddings()) {
            m.put("lm_head.weight", new long[] {c.vocabSize(), e});
        }
        return m;
    }

    private static void linear(Map<String, long[]> m, String path, long out, long in, boolean bias) {
        m.put(path + ".weight", new long[] {out, in});
        if (bias) {
            m.put(path + ".bias", new long[] {out});
        }
    }

    /**
     * Weights from a state dict with Hugging Face names: float32, float16 or bfloat16 tensors; rotary
     * {@code inv_freq} buffers ignored; with tied embeddings an {@code lm_head.weight} is accepted only when it equals
     * the token embedding. Missing and unexpected tensors are errors that list them.
     *
     * @param source names the checkpoint in error messages
     */
    public static LlamaWeights of(LlamaConfig config, Map<String, Tensor> stateDict, String source) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(stateDict, "stateDict");
        String src = source == null ? "state dict" : source;
        Map<String, long[]> expected = expectedShapes(config);
        TreeSet<String> unexpected = new TreeSet<>();
        Tensor tiedHead = null;
        for (Map.Entry<String, Tensor> en : stateDict.entrySet()) {
            String name = en.getKey();
            if (expected.containsKey(name) || IGNORED.matcher(name).matches()) {
                continue;
            }
            if (name.equals("lm_head.weight") && config.tieWordEmbeddings()) {
                tiedHead = en.getValue();
                continue;
            }
            unexpected.add(name);
        }
        if (!unexpected.isEmpty()) {
            throw new PetException(src + ": unexpected tensors " + unexpected + " for a " + config.modelType()
                    + " with num_hidden_layers=" + config.numHiddenLayers() + ", attention_bias="
                    + config.attentionBias() + ", mlp_bias=" + config.mlpBias() + ", tie_word_embeddings="
                    + config.tieWordEmbeddings());
        }
        TreeSet<String> missing = new TreeSet<>();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> en : expected.entrySet()) {
            Tensor t = stateDict.get(en.getKey());
            if (t == null) {
                missing.add(en.getKey());
                continue;
            }
            checkTensor(src, en.getKey(), en.getValue(), t);
            out.put(en.getKey(), t);
        }
        if (!missing.isEmpty()) {
            throw new PetException(src + ": missing tensors " + (missing.size() > 8
                    ? List.copyOf(missing).subList(0, 8) + " and " + (missing.size() - 8) + " more" : missing)
                    + " for a " + config.modelType() + " with num_hidden_layers=" + config.numHiddenLayers());
        }
        if (tiedHead != null) {
            checkTensor(src, "lm_head.weight", expected.get("model.embed_tokens.weight"), tiedHead);
            if (!Arrays.equals(tiedHead.castTo(DataType.FLOAT).toFloatArray(),
                    out.get("model.embed_tokens.weight").castTo(DataType.FLOAT).toFloatArray())) {
                throw new PetException(src + ": 'lm_head.weight' differs from 'model.embed_tokens.weight' although "
                        + "tie_word_embeddings is true; set tie_word_embeddings to false in config.json");
            }
        }
        return new LlamaWeights(config, out);
    }

    private static void checkTensor(String src, String name, long[] shape, Tensor t) {
        checkShape(src, name, shape, t);
        DataType d = t.dataType();
        if (d != DataType.FLOAT && d != DataType.FLOAT16 && d != DataType.BFLOAT16 && d != DataType.DOUBLE) {
            throw new PetException(src + ": tensor '" + name + "' has element type " + d
                    + ", expected F32, F16 or BF16");
        }
    }

    /**
     * Seeded random float32 weights with Hugging Face's scheme ({@code LlamaPreTrainedModel._init_weights}): linear
     * and embedding weights normal(0, initializer_range), biases 0, RMSNorm weights 1. Each tensor draws from its
     * own stream derived from {@code seed} and its name, so the result does not depend on thread scheduling.
     */
    public static LlamaWeights random(LlamaConfig config, long seed) {
        Objects.requireNonNull(config, "config");
        return new LlamaWeights(config, seededRandom(expectedShapes(config), seed,
                name -> name.endsWith("norm.weight") ? Init.constant(1) : name.endsWith(".bias") ? Init.constant(0)
                        : Init.normal(config.initializerRange())));
    }

    /** A copy with one tensor replaced by one of the same shape (tests perturb biases and norms this way). */
    public LlamaWeights with(String name, Tensor tensor) {
        return of(config(), replacing(name, tensor), "replacement");
    }
}
