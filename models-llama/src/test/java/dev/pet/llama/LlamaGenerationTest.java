package dev.pet.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The with-past graph (Optimum names, [batch, kvHeads, past, headDim] cache) generates exactly what recomputing the
 * whole sequence without a cache generates, token for token, and its logits agree at every step.
 */
class LlamaGenerationTest {
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static int argmax(float[] logits, int from, int v) {
        int best = 0;
        for (int j = 1; j < v; j++) {
            if (logits[from + j] > logits[from + best]) {
                best = j;
            }
        }
        return best;
    }

    @Test
    void kvCacheGenerationEqualsNoCacheGenerationTokenForToken() {
        LlamaConfig c = TestLlamas.config("tie_word_embeddings", false, "rope_scaling",
                Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                        "original_max_position_embeddings", 16));
        LlamaWeights w = TestLlamas.weights(c, 5);
        int v = c.vocabSize();
        long[] prompt = {3, 14, 15, 92, 65};
        int steps = 12;

        List<Long> plain = new ArrayList<>();
        List<float[]> plainLogits = new ArrayList<>();
        try (CompiledGraph g = engine.compile(LlamaGraph.build(w, CausalLmGraphOptions.training()).model())) {
            List<Long> seq = new ArrayList<>(Arrays.stream(prompt).boxed().toList());
            for (int s = 0; s < steps; s++) {
                long[] ids = seq.stream().mapToLong(Long::longValue).toArray();
                float[] logits = g.run(Map.of(CausalLmNames.INPUT_IDS, TestLlamas.longs(new long[][] {ids}),
                        CausalLmNames.ATTENTION_MASK, TestLlamas.longs(TestLlamas.ones(1, ids.length))))
                        .get(CausalLmNames.LOGITS).toFloatArray();
                int off = (ids.length - 1) * v;
                plainLogits.add(Arrays.copyOfRange(logits, off, off + v));
                long next = argmax(logits, off, v);
                plain.add(next);
                seq.add(next);
            }
        }

        List<Long> cached = new ArrayList<>();
        try (CompiledGraph g = engine.compile(LlamaGraph.build(w, CausalLmGraphOptions.inference()).model())) {
            Map<String, Tensor> past = new HashMap<>();
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                past.put(CausalLmNames.pastKey(i), TestLlamas.emptyCache(c));
                past.put(CausalLmNames.pastValue(i), TestLlamas.emptyCache(c));
            }
            long[] input = prompt;
            int pastLen = 0;
            for (int s = 0; s < steps; s++) {
                Map<String, Tensor> feeds = new HashMap<>(past);
                long[] pos = new long[input.length];
                for (int j = 0; j < pos.length; j++) {
                    pos[j] = pastLen + j;
                }
                feeds.put(CausalLmNames.INPUT_IDS, TestLlamas.longs(new long[][] {input}));
                feeds.put(CausalLmNames.POSITION_IDS, TestLlamas.longs(new long[][] {pos}));
                feeds.put(CausalLmNames.ATTENTION_MASK, TestLlamas.longs(TestLlamas.ones(1, pastLen + input.length)));
                Map<String, Tensor> out = g.run(feeds);
                float[] logits = out.get(CausalLmNames.LOGITS).toFloatArray();
                int off = (input.length - 1) * v;
                float[] last = Arrays.copyOfRange(logits, off, off + v);
                for (int j = 0; j < v; j++) {
                    assertEquals(plainLogits.get(s)[j], last[j], 1e-4, "step " + s + " logit " + j);
                }
                long next = argmax(logits, off, v);
                cached.add(next);
                pastLen += input.length;
                for (int i = 0; i < c.numHiddenLayers(); i++) {
                    Tensor k = out.get(CausalLmNames.presentKey(i));
                    assertArrayEquals(new long[] {1, c.numKeyValueHeads(), pastLen, c.headDim()}, k.shape());
                    past.put(CausalLmNames.pastKey(i), k);
                    past.put(CausalLmNames.pastValue(i), out.get(CausalLmNames.presentValue(i)));
                }
                input = new long[] {next};
            }
        }
        assertEquals(plain, cached);
        assertTrue(plain.stream().distinct().count() > 1, "degenerate generation: " + plain);
    }

    @Test
    void thePositionsValueDrivesRope() {
        // Renumbering the anatomy's positions (as PEFT-exact prefix tuning does) equals feeding those position_ids.
        // RoPE sees only relative positions, so the renumbering spreads them out (p -> 2p) rather than shifting.
        LlamaConfig c = TestLlamas.config();
        LlamaWeights w = TestLlamas.weights(c, 6);
        long[][] ids = {{4, 8, 15, 16, 23, 42}};
        LlamaGraph training = LlamaGraph.build(w, CausalLmGraphOptions.training());
        Model shifted = training.model().copy();
        Graph g = shifted.graph();
        GraphBuilder b = new GraphBuilder(g, (int) shifted.opset());
        Value positions = g.requireValue(training.anatomy().positionIds());
        List<dev.pet.onnx.ir.Node> users = new ArrayList<>(positions.uses());
        Value plus = b.mul(positions, b.constant(Tensor.scalar(2L)));
        for (dev.pet.onnx.ir.Node n : users) {
            for (int i = 0; i < n.inputs().size(); i++) {
                if (n.inputs().get(i) == positions) {
                    n.setInput(i, plus);
                }
            }
        }
        float[] got = TestLlamas.logits(engine, shifted, ids, TestLlamas.ones(1, 6));
        LlamaGraph withPositions = LlamaGraph.build(w, CausalLmGraphOptions.training().withPositionIds(true));
        float[] expected;
        try (CompiledGraph cg = engine.compile(withPositions.model())) {
            expected = cg.run(Map.of(CausalLmNames.INPUT_IDS, TestLlamas.longs(ids), CausalLmNames.ATTENTION_MASK,
                    TestLlamas.longs(TestLlamas.ones(1, 6)), CausalLmNames.POSITION_IDS,
                    TestLlamas.longs(new long[][] {{0, 2, 4, 6, 8, 10}}))).get(CausalLmNames.LOGITS).toFloatArray();
        }
        float[] unshifted = TestLlamas.logits(engine, training.model(), ids, TestLlamas.ones(1, 6));
        double diff = 0;
        double moved = 0;
        for (int i = 0; i < got.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - expected[i]));
            moved = Math.max(moved, Math.abs(got[i] - unshifted[i]));
        }
        assertTrue(diff < 1e-5, "renumbered positions differ from position_ids by " + diff);
        assertTrue(moved > 1e-3, "positions had no effect: " + moved);
    }

    /** pet-engine's family-neutral generator runs the Llama with-past graph (grouped-query cache) as it runs GPT-2's. */
    @Test
    void petEngineGeneratorRunsTheLlamaGraphWithAndWithoutCacheAndInBatches() {
        LlamaWeights w = TestLlamas.weights(TestLlamas.config(), 7);
        try (CompiledGraph g = engine.compile(LlamaGraph.build(w, CausalLmGraphOptions.inference()).model())) {
            dev.pet.engine.Generator gen = new dev.pet.engine.Generator(g, 64);
            assertEquals(w.config().numHiddenLayers(), gen.layers());
            dev.pet.engine.GenerationConfig cfg = dev.pet.engine.GenerationConfig.sampling(10, 0.9, 20, 0.95, 3);
            long[] prompt = {3, 14, 15, 92, 65};
            long[] cached = gen.generate(prompt, cfg);
            assertEquals(10, cached.length);
            assertArrayEquals(gen.generateWithoutCache(prompt, cfg), cached);
            long[] shorter = {7, 8};
            List<long[]> batch = gen.generate(List.of(prompt, shorter), cfg, null,
                    dev.pet.engine.Generator.TokenSink.none());
            assertArrayEquals(cached, batch.get(0));
            assertArrayEquals(gen.generate(shorter, cfg), batch.get(1));
        }
    }
}
