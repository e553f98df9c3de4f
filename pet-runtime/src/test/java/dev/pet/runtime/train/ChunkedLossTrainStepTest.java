package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.llama.LlamaProvider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Gradients;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.optim.LossChunks;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The head and loss over row chunks on real model graphs (tiny GPT-2 and Llama, LoRA on the blocks and on the output
 * head, float32): the loss and every trainable gradient equal the unchunked graph's to float32 rounding, with and
 * without recomputation, for row counts that the chunk count does not divide and for fewer rows than chunks. The
 * chunks run other Gemm shapes than the whole head (one row: a matrix-vector kernel), so sums round differently, and
 * the input gradient dX = dlogits·W sums V terms that cancel (each row of dlogits sums to zero): the largest
 * difference measured was 4.3e-6 of the largest element of a gradient tensor (gpt2-tiny, one row per chunk; 4e-7 at
 * llama-tiny). The tolerance, 2e-5 of it, passes that rounding and fails a missing or doubled row by three to four
 * orders of magnitude (a row is 1/2 to 1/14 of these losses). The float64 comparison is in pet-onnx's
 * ChunkedLossTest (1e-12).
 */
class ChunkedLossTrainStepTest {
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    /** The provider's model with the output head registered as a linear module, so LoRA can target it. */
    private static PretrainedModel withHeadModule(PretrainedModel base) {
        Graph g = base.model().graph();
        Value v = g.requireValue(base.anatomy().logits());
        while (v.producer().opType().equals("Reshape")) {
            v = v.producer().input(0);
        }
        Node head = v.producer();
        assertEquals("Gemm", head.opType());
        ModelAnatomy a = base.anatomy();
        List<LinearModule> linears = new ArrayList<>(a.linears());
        long width = a.hiddenSize();
        linears.add(new LinearModule("lm_head", head.input(1).name(), null, head.input(0).name(), v.name(), width,
                base.vocabSize(), a.layers().size() - 1, false));
        ModelAnatomy withHead = new ModelAnatomy(a.layers(), linears, a.hiddenSize(), a.numHeads(), a.headDim(),
                a.inputIds(), a.attentionMask(), a.positionIds(), a.logits(), a.numKeyValueHeads(),
                a.defaultTargetModules());
        return new PretrainedModel(base.providerId(), base.name(), base.model(), withHead, base.tokenizer(),
                base.config(), base.vocabSize(), base.maxPositions());
    }

    private static PretrainedModel load(String preset, int seq) {
        ModelProvider provider = preset.startsWith("gpt2") ? new Gpt2Provider() : new LlamaProvider();
        return provider.load(new ModelRequest(preset, Map.of("seq_length", seq), 2));
    }

    private static PetModel lora(PretrainedModel base, List<String> targets) {
        LoraAdapter lora = new LoraAdapter();
        return lora.getPetModel(base, lora.parseConfig(Map.of("r", 4, "lora_alpha", 8, "init_lora_weights",
                "gaussian", "target_modules", targets)));
    }

    private static Map<String, Tensor> feeds(long vocab, int batch, int seq) {
        long[] tokens = new long[batch * (seq + 1)];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextLong(Math.min(vocab, 500));
        }
        float[] mask = new float[batch * seq];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 5 == 4 ? 0 : 1;
        }
        return Map.of(CausalLmLoss.TOKENS, Tensor.ofLongs(tokens, batch, seq + 1),
                CausalLmLoss.LOSS_MASK, Tensor.ofFloats(mask, batch, seq));
    }

    /** Loss, loss sum and the gradient of every trainable; "chunks" holds the chunks used. */
    private static Map<String, float[]> run(PetModel p, ModelAnatomy a, int chunks, boolean recompute, int batch,
            int seq, long vocab) {
        Model m = p.model().copy();
        Graph g = m.graph();
        List<String> blocks = BlockBoundaries.of(p.model().graph(), a);
        String hidden = blocks.get(blocks.size() - 1);
        CausalLmLoss.Appended appended = CausalLmLoss.append(g, a.inputIds(), a.attentionMask(), a.logits(),
                (int) m.opset(), true, new LossChunks(hidden, chunks));
        assertNull(appended.unchunkedBecause());
        Recompute plan = recompute ? Recompute.segments(blocks).withSegments(appended.segments()) : Recompute.NONE;
        Gradients grads = Autodiff.differentiate(g, (int) m.opset(), appended.loss(),
                p.trainables().stream().map(g::requireValue).toList(), plan);
        g.addOutput(g.requireValue(CausalLmLoss.LOSS_SUM));
        p.trainables().forEach(t -> g.addOutput(grads.get(t)));
        Map<String, float[]> out = new LinkedHashMap<>();
        try (CompiledGraph c = engine.compile(m)) {
            Map<String, Tensor> r = c.run(feeds(vocab, batch, seq));
            out.put(CausalLmLoss.LOSS, r.get(CausalLmLoss.LOSS).toFloatArray());
            out.put(CausalLmLoss.LOSS_SUM, r.get(CausalLmLoss.LOSS_SUM).toFloatArray());
            p.trainables().forEach(t -> out.put(t, r.get(grads.get(t).name()).toFloatArray()));
        }
        out.put("chunks", new float[] {appended.chunks()});
        return out;
    }

    private static void assertClose(Map<String, float[]> want, Map<String, float[]> got, String what) {
        for (String k : want.keySet()) {
            if (k.equals("chunks")) {
                continue;
            }
            float[] w = want.get(k);
            float[] h = got.get(k);
            double scale = 0;
            for (float x : w) {
                scale = Math.max(scale, Math.abs(x));
            }
            double tol = 2e-5 * Math.max(scale, 1e-3);
            for (int i = 0; i < w.length; i++) {
                assertEquals(w[i], h[i], tol, what + ": " + k + "[" + i + "] (largest " + scale + ")");
            }
        }
    }

    /** 2×7 = 14 rows in 3 chunks (5, 5, 4) and 1×2 = 2 rows in 4 chunks (two empty). */
    @ParameterizedTest
    @CsvSource({"gpt2-tiny, 2, 7, 3", "gpt2-tiny, 1, 2, 4", "llama-tiny, 2, 7, 3", "llama-tiny, 1, 2, 4"})
    void chunkedLossAndGradientsEqualTheUnchunked(String preset, int batch, int seq, int chunks) {
        PretrainedModel base = withHeadModule(load(preset, seq));
        List<String> targets = preset.startsWith("gpt2") ? List.of("c_attn", "lm_head")
                : List.of("q_proj", "v_proj", "lm_head");
        PetModel p = QuantizedBaseTest.withRandomLora(lora(base, targets));
        assertTrue(p.trainables().stream().anyMatch(t -> t.contains("lm_head")), "LoRA on the head");
        Map<String, float[]> whole = run(p, base.anatomy(), 1, false, batch, seq, base.vocabSize());
        for (boolean recompute : new boolean[] {false, true}) {
            Map<String, float[]> chunked = run(p, base.anatomy(), chunks, recompute, batch, seq, base.vocabSize());
            assertEquals(chunks, chunked.get("chunks")[0]);
            assertClose(whole, chunked, preset + ", " + chunks + " chunks, recompute " + recompute);
        }
    }

    /**
     * A 4-bit MatMulNBits head (its backward through the transposed quantized copy) is chunked the same way, and so is
     * a kernel matmul_integer head, whose activations are quantized row by row.
     */
    @ParameterizedTest
    @CsvSource({"4, fp32, matmul_nbits, MatMulNBits", "8, int8, matmul_integer, DynamicInt8MatMul"})
    void aQuantizedHeadIsChunkedToo(int bits, String compute, String kernel, String op) {
        PretrainedModel base = load("llama-tiny", 6);
        QuantSpec spec = new QuantSpec(bits, 32, true, QuantSpec.Compute.parse(compute),
                QuantSpec.Kernel.parse(kernel));
        PretrainedModel q = new Quantization(spec, null, true).apply(base, true).model();
        assertTrue(q.model().graph().nodes().stream().anyMatch(n -> n.opType().equals(op)
                && n.output(0).uses().stream().anyMatch(u -> u.opType().equals("Reshape"))), "the head is quantized");
        PetModel p = QuantizedBaseTest.withRandomLora(lora(q, List.of("q_proj", "v_proj")));
        Map<String, float[]> whole = run(p, q.anatomy(), 1, false, 2, 6, q.vocabSize());
        Map<String, float[]> chunked = run(p, q.anatomy(), 5, true, 2, 6, q.vocabSize());
        assertClose(whole, chunked, kernel + " head");
    }

    /** Training steps through GraphTrainStep follow the unchunked trajectory; evaluation gives the same loss. */
    @Test
    void trainStepAndEvaluationFollowTheUnchunkedGraph() {
        PretrainedModel base = load("gpt2-tiny", 8);
        PetModel pet = QuantizedBaseTest.withRandomLora(lora(base, List.of("c_attn")));
        var a = base.anatomy();
        Map<String, Tensor> f = feeds(base.vocabSize(), 2, 8);
        Batch batch = new Batch(2, 8, f.get(CausalLmLoss.TOKENS).toLongArray(),
                f.get(CausalLmLoss.LOSS_MASK).toFloatArray(), DataPosition.START);
        LossChunks derived = HeadChunking.of(pet.model().graph(), a, 16);
        assertNull(derived, "16 rows of a tiny vocabulary need no chunks");
        List<double[]> traces = new ArrayList<>();
        for (int chunks : new int[] {1, 3}) {
            List<String> blocks = BlockBoundaries.of(pet.model().graph(), a);
            var io = new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits(),
                    Recompute.segments(blocks), chunks == 1 ? null : new LossChunks(blocks.get(blocks.size() - 1),
                    chunks));
            double[] trace = new double[7];
            try (GraphTrainStep step = new GraphTrainStep(engine, pet.model(), io, pet.trainables(),
                    OptimizerSpec.adamW(), 1, (t, d) -> { })) {
                assertEquals(chunks, step.lossChunks());
                assertEquals(chunks > 1, step.compiled().model().graph().nodes().stream()
                        .anyMatch(n -> n.name().contains("/chunk2/")), "the step runs the head in chunks");
                assertEquals(chunks > 1, step.compiled().model().graph().nodes().stream()
                        .anyMatch(n -> n.name().startsWith("recompute/") && n.name().contains("/chunk2")),
                        "with block recomputation the chunks are recomputed too");
                for (int s = 0; s < 3; s++) {
                    TrainStep.StepResult r = step.step(List.of(batch), 1e-2, s + 1);
                    trace[2 * s] = r.loss();
                    trace[2 * s + 1] = r.gradNorm();
                }
                trace[6] = step.evaluate(batch).lossSum();
            }
            traces.add(trace);
        }
        for (int i = 0; i < traces.get(0).length; i++) {
            double want = traces.get(0)[i];
            assertEquals(want, traces.get(1)[i], 1e-5 * Math.abs(want), "value " + i + " of "
                    + Arrays.toString(traces.get(0)));
        }
    }

    @Test
    void theRunDerivesTheChunkCountFromRowsAndVocabulary() {
        PretrainedModel base = load("gpt2-tiny", 8);
        Graph g = base.model().graph();
        long vocab = base.vocabSize();
        // rows so that the logits are just over two 64 MiB chunks
        long rows = 2 * LossChunks.TARGET_BYTES / (vocab * 4) + 1;
        LossChunks c = HeadChunking.of(g, base.anatomy(), rows);
        assertEquals(3, c.count());
        var layers = base.anatomy().layers();
        assertEquals(layers.get(layers.size() - 1).residualAfterMlp(), c.hidden());
    }
}
