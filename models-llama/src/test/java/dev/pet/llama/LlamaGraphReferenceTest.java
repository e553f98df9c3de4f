package dev.pet.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.OrtEngine;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ONNX graph against {@link NaiveLlama} (float64, written independently from Hugging Face's modeling code):
 * logits agree within 1e-4 absolute. Float32 rounding over two small layers stays below 1e-5 here, so 1e-4 leaves
 * room for summation order while a wrong RoPE pair, head mapping or norm moves logits by more than 1e-2.
 */
class LlamaGraphReferenceTest {
    private static final double TOLERANCE = 1e-4;
    private static OrtEngine engine;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    @Test
    void groupedQueryAttentionWithUntiedHeadMatchesTheReference() {
        LlamaConfig c = TestLlamas.config("tie_word_embeddings", false, "rope_theta", 100.0);
        assertEquals(2, c.groupSize());
        LlamaWeights w = TestLlamas.weights(c, 1);
        long[][] ids = {{5, 17, 3, 90, 41, 8, 60, 2}, {1, 2, 3, 4, 5, 6, 7, 8}};
        // Row 1 is left-padded: its first two keys are masked; padded query rows are not compared.
        long[][] mask = {{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}};
        compare(w, ids, mask, new int[] {0, 2});
    }

    @Test
    void qwen2BiasesTiedHeadFromAShardedBf16CheckpointMatchTheReference() throws Exception {
        LlamaConfig c = TestLlamas.config("model_type", "qwen2", "tie_word_embeddings", true, "rope_theta",
                1000.0);
        assertTrue(c.attentionBias() && !c.outputBias());
        LlamaWeights w = TestLlamas.weights(c, 2);
        Map<String, Tensor> bf16 = new LinkedHashMap<>();
        w.tensors().forEach((k, v) -> bf16.put(k, v.castTo(DataType.BFLOAT16)));
        LlamaWeights stored = LlamaWeights.of(c, bf16, "bf16");
        LlamaCheckpoint.save(stored, dir, 40_000); // about 40 kB per shard: several shards and an index
        assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("model.safetensors.index.json")));
        assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("model-00002-of-" + shardCount(dir) + ".safetensors")));
        LlamaWeights loaded = LlamaCheckpoint.load(dir, Map.of());
        assertEquals(DataType.BFLOAT16, loaded.get("model.layers.0.self_attn.q_proj.bias").dataType());
        // The reference reads the same bf16 values, widened exactly.
        compare(loaded, new long[][] {{7, 3, 50, 50, 12, 95, 0}}, null, new int[] {0});
    }

    @Test
    void llama3RopeScalingWithWideHeadsMatchesTheReference() {
        // head_dim 16 while hidden/heads is 12; original context 64 puts rotary pairs in all three llama3 bands.
        LlamaConfig c = TestLlamas.config("hidden_size", 48, "head_dim", 16, "rope_theta", 10000.0, "rope_scaling",
                Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                        "original_max_position_embeddings", 64));
        assertEquals(16, c.headDim());
        double[] inv = NaiveLlama.inverseFrequencies(c);
        float[] graphInv = c.ropeScaling().inverseFrequencies(c.ropeTheta(), c.headDim());
        for (int i = 0; i < inv.length; i++) {
            assertEquals(inv[i], graphInv[i], 1e-6 * inv[i], "inverse frequency " + i);
        }
        LlamaWeights w = TestLlamas.weights(c, 3);
        long[] row = new long[24];
        for (int i = 0; i < row.length; i++) {
            row[i] = (i * 37L + 11) % 96;
        }
        compare(w, new long[][] {row}, null, new int[] {0});
    }

    @Test
    void linearRopeScalingAndMultiHeadAttentionMatchTheReference() {
        LlamaConfig c = TestLlamas.config("num_key_value_heads", 4, "attention_bias", true, "mlp_bias", true,
                "rope_scaling", Map.of("type", "linear", "factor", 4.0), "rope_theta", 50.0);
        assertTrue(c.outputBias());
        compare(TestLlamas.weights(c, 4), new long[][] {{9, 8, 7, 6, 5, 4, 3}}, null, new int[] {0});
    }

    private static String shardCount(Path dir) throws java.io.IOException {
        try (var files = java.nio.file.Files.list(dir)) {
            long n = files.filter(f -> f.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
                    .count();
            return String.format("%05d", n);
        }
    }

    private static void compare(LlamaWeights w, long[][] ids, long[][] mask, int[] firstRealToken) {
        LlamaGraph g = LlamaGraph.build(w, CausalLmGraphOptions.training());
        float[] got = TestLlamas.logits(engine, g.model(), ids, mask != null ? mask
                : TestLlamas.ones(ids.length, ids[0].length));
        NaiveLlama ref = new NaiveLlama(w);
        int v = w.config().vocabSize();
        int seq = ids[0].length;
        double worst = 0;
        double spread = 0;
        for (int r = 0; r < ids.length; r++) {
            double[][] expected = ref.forward(ids[r], mask == null ? null : mask[r]);
            for (int s = firstRealToken[r]; s < seq; s++) {
                for (int j = 0; j < v; j++) {
                    double e = expected[s][j];
                    worst = Math.max(worst, Math.abs(e - got[(r * seq + s) * v + j]));
                    spread = Math.max(spread, Math.abs(e));
                }
            }
        }
        assertTrue(spread > 0.5, "logits too small to test anything: " + spread);
        assertTrue(worst <= TOLERANCE, "max |graph - reference| = " + worst + " over logits up to " + spread);
    }

    @Test
    void graphHasTheOptimumNamesAndAGqaShapedCache() {
        LlamaConfig c = TestLlamas.config();
        LlamaGraph g = LlamaGraph.build(LlamaWeights.random(c, 1), CausalLmGraphOptions.inference());
        List<String> inputs = g.model().graph().inputs().stream().map(x -> x.name()).toList();
        assertEquals(List.of("input_ids", "attention_mask", "position_ids", "past_key_values.0.key",
                "past_key_values.0.value", "past_key_values.1.key", "past_key_values.1.value"), inputs);
        List<String> outputs = g.model().graph().outputs().stream().map(x -> x.name()).toList();
        assertTrue(outputs.containsAll(List.of("logits", "present.0.key", "present.1.value")), outputs.toString());
        assertEquals("[batch, 2, past_sequence, 16]", g.model().graph().inputs().get(3).type().dims().toString());
    }
}
