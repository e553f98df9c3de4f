package dev.pet.llama;

import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Small Llama-family models for tests: configs from plain keys, weights with every tensor away from its init. */
final class TestLlamas {
    private TestLlamas() {
    }

    /** A config from Hugging Face keys over a small GQA Llama (width 64, 4 heads, 2 key/value heads, 2 layers). */
    static LlamaConfig config(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model_type", "llama");
        m.put("vocab_size", 96);
        m.put("hidden_size", 64);
        m.put("intermediate_size", 96);
        m.put("num_hidden_layers", 2);
        m.put("num_attention_heads", 4);
        m.put("num_key_value_heads", 2);
        m.put("max_position_embeddings", 64);
        m.put("rms_norm_eps", 1e-5);
        m.put("initializer_range", 0.2); // large enough that attention is far from uniform and RoPE matters
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return LlamaConfig.fromMap(m, "test config");
    }

    /** Seeded weights whose norm weights and biases are random too (not 1 and 0), so every term is checked. */
    static LlamaWeights weights(LlamaConfig c, long seed) {
        LlamaWeights w = LlamaWeights.random(c, seed);
        Random r = new Random(seed + 17);
        Map<String, Tensor> m = new LinkedHashMap<>(w.tensors());
        for (Map.Entry<String, Tensor> e : m.entrySet()) {
            String n = e.getKey();
            if (n.endsWith("norm.weight") || n.endsWith(".bias")) {
                float[] v = e.getValue().toFloatArray();
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) ((n.endsWith(".bias") ? 0 : 1) + 0.2 * r.nextGaussian());
                }
                e.setValue(Tensor.ofFloats(v, e.getValue().shape()));
            }
        }
        return LlamaWeights.of(c, m, "test weights");
    }

    /** Logits [batch·sequence·vocab] of a training-form graph. */
    static float[] logits(OrtEngine engine, Model model, long[][] ids, long[][] mask) {
        try (CompiledGraph g = engine.compile(model)) {
            Map<String, Tensor> feeds = new HashMap<>();
            feeds.put(CausalLmNames.INPUT_IDS, longs(ids));
            if (mask != null) {
                feeds.put(CausalLmNames.ATTENTION_MASK, longs(mask));
            }
            return g.run(feeds).get(CausalLmNames.LOGITS).toFloatArray();
        }
    }

    static Tensor longs(long[][] rows) {
        long[] flat = new long[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, flat, i * rows[0].length, rows[0].length);
        }
        return Tensor.ofLongs(flat, rows.length, rows[0].length);
    }

    static long[][] ones(int rows, int cols) {
        long[][] m = new long[rows][cols];
        for (long[] r : m) {
            java.util.Arrays.fill(r, 1);
        }
        return m;
    }

    static Tensor emptyCache(LlamaConfig c) {
        return Tensor.zeros(DataType.FLOAT, 1, c.numKeyValueHeads(), 0, c.headDim());
    }
}
