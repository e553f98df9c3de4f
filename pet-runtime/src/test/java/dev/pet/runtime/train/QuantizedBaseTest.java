package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetAdapters;
import dev.pet.api.PetModel;
import dev.pet.api.Quantization;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Gradients;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A LoRA model on a quantized frozen base (issue #13's correctness bar): the first step's loss and the LoRA
 * gradients against the same model on the float base, for GPT-2 ([in, out] weights through MatMul) and Llama
 * ([out, in] weights through Gemm); exports and adapters across quantized and float bases.
 */
class QuantizedBaseTest {
    static final int SEQ = 16;
    static final int BATCH = 2;
    private static OrtEngine engine;
    @TempDir
    static Path dir;

    @BeforeAll
    static void start() {
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    static RunSetup setup(String model, String quantization) {
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                QuantizedBaseTest.class.getClassLoader(), null), new TrainingListener() { },
                new TokenCache(dir.resolve("tokens")), new PrintStream(System.out));
        String yaml = "seed: 5\nmodel: {model_config: {checkpoint_name_or_path: " + model + ", seq_length: " + SEQ
                + (quantization == null ? "" : ", quantization: " + quantization)
                + ", pet_config: {pet_type: lora, lora_rank: 4, lora_dropout: 0, target_modules: all-linear}}}";
        return new RunSetup(RunConfigLoader.parse(yaml, "run.yaml", List.of()), env);
    }

    /** LoRA factors set to seeded random values, so both A and B get gradients (B = 0 would zero A's). */
    static PetModel withRandomLora(PetModel p) {
        Map<String, Tensor> values = new LinkedHashMap<>();
        SplittableRandom r = new SplittableRandom(11);
        p.trainableTensors().forEach((name, t) -> {
            float[] v = new float[(int) t.elementCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (r.nextGaussian() * 0.05);
            }
            values.put(name, Tensor.ofFloats(v, t.shape()));
        });
        return p.withTrainables(values);
    }

    record LossAndGradients(double loss, Map<String, float[]> gradients) {
    }

    static Map<String, Tensor> batch(long vocab) {
        long[] tokens = new long[BATCH * (SEQ + 1)];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextLong(vocab);
        }
        float[] mask = new float[BATCH * SEQ];
        java.util.Arrays.fill(mask, 1f);
        return Map.of(CausalLmLoss.TOKENS, Tensor.ofLongs(tokens, BATCH, SEQ + 1),
                CausalLmLoss.LOSS_MASK, Tensor.ofFloats(mask, BATCH, SEQ));
    }

    static LossAndGradients lossAndGradients(RunSetup s, PetModel p) {
        Model m = p.model().copy();
        var a = s.base.anatomy();
        CausalLmLoss.append(m.graph(), a.inputIds(), a.attentionMask(), a.logits(), (int) m.opset());
        Gradients g = Autodiff.differentiate(m, CausalLmLoss.LOSS, p.trainables());
        m.graph().addOutput(m.graph().requireValue(CausalLmLoss.LOSS));
        p.trainables().forEach(t -> m.graph().addOutput(g.get(t)));
        Map<String, Tensor> out;
        try (CompiledGraph c = engine.compile(m)) {
            out = c.run(batch(s.base.vocabSize()));
        }
        Map<String, float[]> grads = new LinkedHashMap<>();
        p.trainables().forEach(t -> grads.put(t, out.get(g.get(t).name()).toFloatArray()));
        return new LossAndGradients(out.get(CausalLmLoss.LOSS).toFloatArray()[0], grads);
    }

    static double cosine(Map<String, float[]> x, Map<String, float[]> y) {
        double dot = 0;
        double nx = 0;
        double ny = 0;
        for (String k : x.keySet()) {
            float[] a = x.get(k);
            float[] b = y.get(k);
            for (int i = 0; i < a.length; i++) {
                dot += (double) a[i] * b[i];
                nx += (double) a[i] * a[i];
                ny += (double) b[i] * b[i];
            }
        }
        return dot / Math.sqrt(nx * ny);
    }

    /**
     * Issue #13: first-step loss within 1e-2 relative of float at 4 bits and 2e-3 at 8 bits; the LoRA gradients
     * with cosine similarity of at least 0.99 (int8 compute also quantizes activations, so both are checked at it).
     */
    @ParameterizedTest
    @CsvSource({"gpt2-tiny, 4, 32, true, int8, 1e-2, matmul_nbits", "gpt2-tiny, 8, 64, false, int8, 2e-3, matmul_nbits",
            "llama-tiny, 4, 32, false, int8, 1e-2, matmul_nbits", "llama-tiny, 8, 32, true, fp32, 2e-3, matmul_nbits",
            "gpt2-tiny, 4, 32, true, fp32, 1e-2, dequantize", "llama-tiny, 8, 32, false, fp32, 2e-3, dequantize",
            "gpt2-tiny, 8, 0, true, int8, 2e-3, matmul_integer", "llama-tiny, 8, 0, true, int8, 2e-3, matmul_integer"})
    void firstStepLossAndLoraGradientsFollowTheFloatBase(String model, int bits, int block, boolean symmetric,
            String compute, double lossTolerance, String kernel) {
        RunSetup fp = setup(model, null);
        // block 0: none given (kernel matmul_integer has one scale per output channel)
        RunSetup q = setup(model, "{bits: " + bits + (block == 0 ? "" : ", block_size: " + block) + ", symmetric: "
                + symmetric + ", compute: " + compute + ", kernel: " + kernel + "}");
        assertNull(fp.quantized);
        assertFalse(q.quantized.layers().isEmpty());
        assertEquals(!kernel.equals("dequantize"), QuantizedLinears.usesContribOps(q.pet.model()));
        assertTrue(QuantizedLinears.hasQuantizedWeights(q.pet.model()));
        assertFalse(q.base.model().graph().initializers().containsKey(q.quantized.layers().get(0).weight()),
                "no float copy of a quantized weight stays in the graph");
        LossAndGradients expected = lossAndGradients(fp, withRandomLora(fp.pet));
        LossAndGradients actual = lossAndGradients(q, withRandomLora(q.pet));
        double rel = Math.abs(actual.loss - expected.loss) / Math.abs(expected.loss);
        assertTrue(rel < lossTolerance, model + ": loss " + actual.loss + " vs float " + expected.loss);
        double cos = cosine(expected.gradients, actual.gradients);
        assertTrue(cos >= 0.99, model + ": LoRA gradient cosine " + cos);
    }

    /**
     * {@code lm_head: true} quantizes the output head as well: an untied head in place (llama-tiny), a head tied to the
     * token embedding (qwen2-tiny, gpt2-tiny) as its own quantized copy while the embedding lookup keeps the float
     * table. The first step still follows the float base at 8 bits (loss within 2e-3, LoRA gradient cosine >= 0.99;
     * a 4-bit head moves every gradient through the logits and measured 0.983-0.989 on these tiny models).
     */
    @ParameterizedTest
    @CsvSource({"llama-tiny, matmul_nbits, false", "qwen2-tiny, matmul_nbits, true", "gpt2-tiny, dequantize, true",
            "gpt2-tiny, matmul_integer, true", "llama-tiny, matmul_integer, false"})
    void theOutputHeadIsQuantizedOnRequestApartFromATiedEmbedding(String model, String kernel, boolean tied) {
        RunSetup fp = setup(model, null);
        RunSetup q = setup(model, eightBits(kernel) + ", lm_head: true}");
        RunSetup bodyOnly = setup(model, eightBits(kernel) + "}");
        var layers = q.quantized.layers();
        assertEquals(bodyOnly.quantized.layers().size() + 1, layers.size(), "the head is one more quantized layer");
        String head = layers.get(layers.size() - 1).weight();
        assertEquals(fp.base.vocabSize(), layers.get(layers.size() - 1).outFeatures(), head + " has a row per token");
        var initializers = q.base.model().graph().initializers();
        assertFalse(initializers.containsKey(head), "no float copy of the quantized head: " + head);
        if (tied) {
            assertEquals(Quantization.LM_HEAD_WEIGHT, head);
            String embedding = fp.base.model().graph().initializers().keySet().stream()
                    .filter(n -> n.contains("wte") || n.contains("embed_tokens")).findFirst().orElseThrow();
            assertTrue(initializers.containsKey(embedding), "the embedding lookup keeps the float " + embedding);
        }
        LossAndGradients expected = lossAndGradients(fp, withRandomLora(fp.pet));
        LossAndGradients actual = lossAndGradients(q, withRandomLora(q.pet));
        LossAndGradients body = lossAndGradients(bodyOnly, withRandomLora(bodyOnly.pet));
        assertTrue(actual.loss != body.loss, "the quantized head changes the logits");
        double rel = Math.abs(actual.loss - expected.loss) / Math.abs(expected.loss);
        assertTrue(rel < 2e-3, model + ": loss " + actual.loss + " vs float " + expected.loss);
        double cos = cosine(expected.gradients, actual.gradients);
        assertTrue(cos >= 0.99, model + ": LoRA gradient cosine " + cos);
    }

    /**
     * {@code embeddings: true} quantizes the token-embedding table too, looked up through GatherBlockQuantized. With a
     * tied head also quantized (gpt2-tiny, qwen2-tiny) the lookup reads the head's quantized copy; an untied table
     * (llama-tiny) gets its own. Either way no float table with a row per token is left, and the first step still
     * follows the float base at 8 bits (loss within 2e-3, LoRA gradient cosine >= 0.99). Refused, naming the setting:
     * a tied table without lm_head (the float head would keep it), a width the block size does not divide, and kernel
     * dequantize, which keeps to standard ONNX and has no quantized lookup.
     */
    @ParameterizedTest
    @CsvSource({"gpt2-tiny, true", "qwen2-tiny, true", "llama-tiny, false"})
    void theEmbeddingTableIsQuantizedOnRequest(String model, boolean tied) {
        RunSetup fp = setup(model, null);
        RunSetup q = setup(model, "{bits: 8, block_size: 32, compute: fp32, lm_head: true, embeddings: true}");
        long vocab = fp.base.vocabSize();
        var layers = q.quantized.layers();
        var lookup = layers.get(layers.size() - 1);
        assertTrue(lookup.lookup() && (lookup.weight().contains("wte") || lookup.weight().contains("embed_tokens")),
                lookup.toString());
        assertTrue(layers.subList(0, layers.size() - 1).stream().noneMatch(QuantizedLinears.Layer::lookup));
        assertEquals(vocab, lookup.outFeatures());
        assertEquals(tied, lookup.bytes() == 0, "a tied table shares the head's codes: " + lookup.bytes() + " bytes");
        var initializers = q.base.model().graph().initializers();
        assertTrue(initializers.values().stream().noneMatch(t -> t.dataType() == dev.pet.onnx.tensor.DataType.FLOAT
                && t.rank() == 2 && t.dim(0) == vocab && t.dim(1) == lookup.inFeatures()), "no float table is left: "
                + initializers.keySet());
        assertEquals(1, q.base.model().graph().nodes().stream()
                .filter(n -> n.opType().equals(QuantizedLinears.GATHER_OP)).count());
        List<String> report = DefaultPetEngine.quantizationReport(q.quantized, true);
        assertTrue(report.get(2).contains("GatherBlockQuantized"), report.get(2));
        assertTrue(report.get(report.size() - 1).contains(tied ? "token lookup through the output head's codes"
                : "(token lookup)"), report.get(report.size() - 1));
        LossAndGradients expected = lossAndGradients(fp, withRandomLora(fp.pet));
        LossAndGradients actual = lossAndGradients(q, withRandomLora(q.pet));
        double rel = Math.abs(actual.loss - expected.loss) / Math.abs(expected.loss);
        assertTrue(rel < 2e-3, model + ": loss " + actual.loss + " vs float " + expected.loss);
        double cos = cosine(expected.gradients, actual.gradients);
        assertTrue(cos >= 0.99, model + ": LoRA gradient cosine " + cos);

        if (tied) {
            var alone = assertThrows(dev.pet.runtime.config.ConfigException.class,
                    () -> setup(model, "{bits: 8, block_size: 32, compute: fp32, embeddings: true}"));
            assertTrue(alone.getMessage().contains("model.model_config.quantization.embeddings")
                    && alone.getMessage().contains("set lm_head: true as well"), alone.getMessage());
        } else {
            RunSetup alone = setup(model, "{bits: 8, block_size: 32, compute: fp32, embeddings: true}");
            assertFalse(alone.base.model().graph().initializers().containsKey(lookup.weight()),
                    "an untied table goes without the head");
        }
        assertTrue(lookup.inFeatures() % 128 != 0, "the tiny models are narrower than a block of 128");
        var partial = assertThrows(dev.pet.runtime.config.ConfigException.class,
                () -> setup(model, "{bits: 8, block_size: 128, compute: fp32, lm_head: true, embeddings: true}"));
        assertTrue(partial.getMessage().contains("model.model_config.quantization.block_size: 128 does not divide the"
                + " width " + lookup.inFeatures()), partial.getMessage());
        var e = assertThrows(dev.pet.runtime.config.ConfigException.class,
                () -> setup(model, "{bits: 8, block_size: 32, compute: fp32, kernel: dequantize, embeddings: true}"));
        assertTrue(e.getMessage().contains("model.model_config.quantization.kernel")
                && e.getMessage().contains("GatherBlockQuantized"), e.getMessage());
    }

    /**
     * The merged export folds LoRA into the dequantized weights: it computes what the quantized PET model computes
     * (fp32 compute, so the only difference is summation order), with plain ONNX ops only. Kernel matmul_integer
     * always rounds the activations to int8 as well, which the float export does not: there the logits agree to
     * that rounding (the merged weights themselves are checked exactly in
     * {@link #aMergedExportIsQuantizedAgainWithTheRunsSettings}).
     */
    @Test
    void mergedExportOfAQuantizedRunEqualsTheQuantizedModel() {
        for (String config : List.of("gpt2-tiny|matmul_nbits", "llama-tiny|matmul_nbits", "gpt2-tiny|dequantize",
                "llama-tiny|dequantize", "qwen2-tiny|matmul_nbits|lm_head", "gpt2-tiny|dequantize|lm_head",
                "llama-tiny|dequantize|lm_head", "gpt2-tiny|matmul_nbits|lm_head|embeddings",
                "llama-tiny|matmul_nbits|embeddings", "gpt2-tiny|matmul_integer",
                "llama-tiny|matmul_integer|lm_head")) {
            RunSetup q = setup(config.split("\\|")[0], config.contains("matmul_integer") ? "{" + settings(config)
                    : "{bits: 4, block_size: 32, compute: fp32, " + settings(config));
            PetModel trained = withRandomLora(q.pet);
            Model merged = q.adapter.mergedModel(Quantization.dequantize(trained), trained.trainableTensors());
            assertFalse(QuantizedLinears.hasQuantizedWeights(merged), config);
            assertFalse(QuantizedLinears.usesContribOps(merged), config);
            double rel = relativeError(logits(q, trained.inferenceModel()), logits(q, merged));
            assertTrue(rel < (config.contains("matmul_integer") ? 2e-2 : 1e-5), config + ": merged logits differ by "
                    + rel);
        }
    }

    /**
     * {@code export --quantize}: the merged model quantized again with the run's settings holds, for every linear,
     * the merged float weight's own quantization (no stale codes from before the merge), runs in ONNX Runtime and
     * stays within 8-bit rounding of the float merge.
     */
    @Test
    void aMergedExportIsQuantizedAgainWithTheRunsSettings() {
        for (String config : List.of("gpt2-tiny|matmul_nbits", "llama-tiny|dequantize|lm_head",
                "qwen2-tiny|matmul_nbits|lm_head|embeddings", "qwen2-tiny|matmul_integer|lm_head")) {
            String[] parts = config.split("\\|");
            RunSetup q = setup(parts[0], eightBits(parts[1]) + flags(config));
            PetModel trained = withRandomLora(q.pet);
            Model merged = q.adapter.mergedModel(Quantization.dequantize(trained), trained.trainableTensors());
            Quantization settings = q.config.model().modelConfig().quantization();
            Model again = settings.requantize(q.base, merged);
            assertTrue(QuantizedLinears.hasQuantizedWeights(again), config);
            assertEquals(!parts[1].equals("dequantize"), QuantizedLinears.usesContribOps(again), config);
            Model roundTrip = Quantization.dequantize(again, q.base.anatomy());
            var spec = q.quantized.spec();
            for (var linear : q.base.anatomy().linears()) {
                Tensor mergedWeight = merged.graph().initializer(linear.weight());
                Tensor expected = QuantizedLinears.roundTrip(mergedWeight, !linear.weightInOut(), spec);
                assertEquals(expected.buffer(), roundTrip.graph().initializer(linear.weight()).buffer(),
                        config + ": " + linear.weight() + " is the merged weight quantized");
            }
            double rel = relativeError(logits(q, merged), logits(q, again));
            assertTrue(rel > 0 && rel < 2e-2, config + ": re-quantized logits differ from the float merge by " + rel);
        }
        RunSetup q4 = setup("gpt2-tiny", "{bits: 4}");
        Quantization q4Settings = q4.config.model().modelConfig().quantization();
        var e = assertThrows(dev.pet.api.PetException.class, () -> q4Settings.requantize(q4.base, q4.base.model()));
        assertTrue(e.getMessage().contains("dequantize it first"), e.getMessage());
    }

    /**
     * The start of an 8-bit quantization map for {@code kernel}: blocks of 32 with fp32 compute, or for
     * matmul_integer (int8 compute, one scale per channel) no block size.
     */
    private static String eightBits(String kernel) {
        return kernel.equals("matmul_integer") ? "{bits: 8, kernel: matmul_integer"
                : "{bits: 8, block_size: 32, compute: fp32, kernel: " + kernel;
    }

    /** "MODEL|KERNEL|FLAG..." as the rest of a quantization map: {@code kernel: KERNEL, FLAG: true, ...}}. */
    private static String settings(String config) {
        return "kernel: " + config.split("\\|")[1] + flags(config);
    }

    /** The FLAG parts of "MODEL|KERNEL|FLAG...", closing a quantization map: {@code , FLAG: true, ...}}. */
    private static String flags(String config) {
        String[] parts = config.split("\\|");
        StringBuilder s = new StringBuilder();
        for (int i = 2; i < parts.length; i++) {
            s.append(", ").append(parts[i]).append(": true");
        }
        return s.append('}').toString();
    }

    /** ‖actual − expected‖ / ‖expected‖. */
    private static double relativeError(float[] expected, float[] actual) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            num += (actual[i] - expected[i]) * (double) (actual[i] - expected[i]);
            den += (double) expected[i] * expected[i];
        }
        return Math.sqrt(num / den);
    }

    private static float[] logits(RunSetup s, Model m) {
        var a = s.base.anatomy();
        long[] ids = batch(s.base.vocabSize()).get(CausalLmLoss.TOKENS).toLongArray();
        long[] input = java.util.Arrays.copyOf(ids, BATCH * SEQ);
        Map<String, Tensor> feeds = new LinkedHashMap<>();
        feeds.put(a.inputIds(), Tensor.ofLongs(input, BATCH, SEQ));
        if (a.attentionMask() != null && m.graph().value(a.attentionMask()) != null) {
            long[] ones = new long[BATCH * SEQ];
            java.util.Arrays.fill(ones, 1);
            feeds.put(a.attentionMask(), Tensor.ofLongs(ones, BATCH, SEQ));
        }
        try (CompiledGraph c = engine.compile(m)) {
            return c.run(feeds, java.util.Set.of(a.logits())).get(a.logits()).toFloatArray();
        }
    }

    /** An adapter trained on a quantized base is an ordinary PEFT adapter: it loads on the float base unchanged. */
    @Test
    void adaptersMoveBetweenQuantizedAndFloatBases() throws Exception {
        RunSetup q = setup("gpt2-tiny", "{bits: 4}");
        RunSetup fp = setup("gpt2-tiny", null);
        PetModel trained = withRandomLora(q.pet);
        Path adapter = dir.resolve("adapter");
        q.adapter.saveAdapter(trained, trained.trainableTensors(), adapter);
        PetModel onFloat = PetAdapters.fromAdapter(fp.adapter, fp.base, Map.of(), adapter);
        PetModel onQuantized = PetAdapters.fromAdapter(q.adapter, q.base, Map.of(), adapter);
        trained.trainableTensors().forEach((name, t) -> {
            assertEquals(t.buffer(), onFloat.trainableTensors().get(name).buffer(), name);
            assertEquals(t.buffer(), onQuantized.trainableTensors().get(name).buffer(), name);
        });
    }

    /** {@code pet inspect} says how the base is quantized, bytes per parameter, contrib ops and per-layer error. */
    @Test
    void inspectReportsTheQuantizedBase() {
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                QuantizedBaseTest.class.getClassLoader(), null), new TrainingListener() { },
                new TokenCache(dir.resolve("tokens")), new PrintStream(System.out));
        var config = RunConfigLoader.parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny, quantization: "
                + "{bits: 8, block_size: 32}, pet_config: {pet_type: lora}}}", "run.yaml", List.of());
        var report = new DefaultPetEngine().inspect(config, env);
        List<String> q = report.quantization();
        assertEquals("bits=8 block_size=32 symmetric=true compute=int8 kernel=matmul_nbits", q.get(0));
        assertTrue(q.get(1).contains("bytes/parameter"), q.get(1));
        assertTrue(q.get(2).startsWith("training, evaluation and generation graphs use ONNX Runtime contrib ops"),
                q.get(2));
        List<String> dq = new DefaultPetEngine().inspect(RunConfigLoader.parse("model: {model_config: "
                + "{checkpoint_name_or_path: gpt2-tiny, quantization: {bits: 4, block_size: 32, compute: fp32, "
                + "kernel: dequantize}, pet_config: {pet_type: lora}}}", "run.yaml", List.of()), env).quantization();
        assertTrue(dq.get(2).contains("standard ONNX ops only (DequantizeLinear"), dq.get(2));
        List<String> int8 = new DefaultPetEngine().inspect(RunConfigLoader.parse("model: {model_config: "
                + "{checkpoint_name_or_path: gpt2-tiny, quantization: {kernel: matmul_integer}, pet_config: {pet_type:"
                + " lora}}}", "run.yaml", List.of()), env).quantization();
        assertEquals("bits=8 block_size=channel symmetric=true compute=int8 kernel=matmul_integer", int8.get(0));
        assertTrue(int8.get(1).contains(" 2.0") && int8.get(1).contains("bytes/parameter"), "int8 codes in both"
                + " orientations, scales per channel: " + int8.get(1));
        assertTrue(int8.get(2).contains("MatMulIntegerToFloat, inside the model's function dev.pet.DynamicInt8MatMul"),
                int8.get(2));
        RunSetup s = setup("gpt2-tiny", "{bits: 8, block_size: 32}");
        assertEquals(3 + s.quantized.layers().size(), q.size());
        assertTrue(q.get(3).startsWith(s.quantized.layers().get(0).weight()) && q.get(3).contains("relative error"),
                q.get(3));
        assertEquals(0, new DefaultPetEngine().inspect(RunConfigLoader.parse("model: {model_config: "
                + "{checkpoint_name_or_path: gpt2-tiny, pet_config: {pet_type: lora}}}", "run.yaml", List.of()), env)
                .quantization().size());
    }
}
