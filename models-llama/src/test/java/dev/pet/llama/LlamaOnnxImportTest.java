package dev.pet.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapters;
import dev.pet.api.PretrainedModel;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.api.onnximport.OnnxImportException;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.hf.ByteLevelBpe;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.llama.TorchStyleLlama.Style;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Llama-family graphs laid out like {@code torch.onnx.export} of Hugging Face LlamaForCausalLM / Qwen2ForCausalLM
 * (renamed weights, RMSNorm as Pow/ReduceMean/Sqrt/Div, RoPE from a Range of positions, repeat_kv, Trilu mask,
 * SiLU as x·sigmoid(x), with-past inputs): the recovered anatomy matches {@link LlamaGraph}'s and the logits equal
 * it within 1e-5 (the same float32 math in another op order).
 */
class LlamaOnnxImportTest {
    private static final long[][] IDS = {{5, 17, 33, 2, 90, 61, 8, 44}, {70, 70, 12, 3, 9, 81, 27, 50}};
    private static final long[][] LEFT_PAD = {{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}};
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static Map<String, Tensor> run(Model m, long[][] ids, long[][] mask, Map<String, Tensor> extra) {
        try (CompiledGraph g = engine.compile(m)) {
            Map<String, Tensor> feeds = new HashMap<>(extra);
            feeds.put("input_ids", TestLlamas.longs(ids));
            feeds.put("attention_mask", TestLlamas.longs(mask));
            return g.run(feeds);
        }
    }

    private static double maxDiff(float[] a, float[] b, long[][] mask, int vocab) {
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            int row = i / vocab / mask[0].length;
            int t = i / vocab % mask[0].length;
            if (mask[row][t] == 1) {
                worst = Math.max(worst, Math.abs(a[i] - b[i]));
            }
        }
        return worst;
    }

    @Test
    void torchStyleExportsImportWithLlamasAnatomyAndLogits() {
        record Case(LlamaConfig config, Style style) {
        }
        List<Case> cases = List.of(
                new Case(TestLlamas.config(), new Style(14, true, false)),
                new Case(TestLlamas.config(), new Style(21, false, true)),
                new Case(TestLlamas.config("model_type", "qwen2", "tie_word_embeddings", true,
                        "num_key_value_heads", 4), new Style(17, true, true)));
        for (Case k : cases) {
            LlamaWeights w = TestLlamas.weights(k.config(), 7);
            LlamaGraph own = LlamaGraph.build(w, CausalLmGraphOptions.training());
            LlamaOnnxImporter.Result r = LlamaOnnxImporter.importModel(TorchStyleLlama.build(w, k.style()),
                    k.style().toString(), LlamaPresets.tokenizer(), Map.of());
            assertTrue(r.report().complete() || r.report().unrecognised().keySet().equals(
                    java.util.Set.of("max_position_embeddings")), r.report().describe());
            ModelAnatomy a = r.model().anatomy();
            ModelAnatomy want = own.anatomy();
            assertEquals(want.hiddenSize(), a.hiddenSize());
            assertEquals(want.numHeads(), a.numHeads(), k.toString());
            assertEquals(want.numKeyValueHeads(), a.numKeyValueHeads(), k.toString());
            assertEquals(want.headDim(), a.headDim());
            assertEquals(want.linears().stream().map(LinearModule::path).toList(),
                    a.linears().stream().map(LinearModule::path).toList());
            for (int i = 0; i < a.linears().size(); i++) {
                assertEquals(want.linears().get(i).outFeatures(), a.linears().get(i).outFeatures());
                assertEquals(want.linears().get(i).bias() != null, a.linears().get(i).bias() != null,
                        a.linears().get(i).path());
            }
            Graph g = r.model().model().graph();
            assertTrue(g.requireValue(a.positionIds()).uses().stream().allMatch(n -> n.opType().equals("Cast")));
            for (LayerAnatomy l : a.layers()) {
                assertTrue(l.residualAfterMlp() != null && l.mlpOutput() != null && l.attentionBias() != null);
                // Keys and values before repeat_kv: [batch, kvHeads, keys, headDim].
                String reader = g.requireValue(l.key()).uses().get(0).opType();
                assertEquals(a.numKeyValueHeads() == a.numHeads() ? "Transpose" : "Unsqueeze", reader);
            }
            float[] ours = TestLlamas.logits(engine, own.model(), IDS, LEFT_PAD);
            float[] got = run(r.model().model(), IDS, LEFT_PAD, Map.of()).get("logits").toFloatArray();
            double d = maxDiff(ours, got, LEFT_PAD, k.config().vocabSize());
            assertTrue(d <= 1e-5, k + ": logits differ by " + d);
        }
    }

    @Test
    void withPastExportRunsACachedStepAsTheFullSequence() {
        LlamaConfig c = TestLlamas.config();
        LlamaWeights w = TestLlamas.weights(c, 9);
        Model m = LlamaOnnxImporter.importModel(TorchStyleLlama.build(w, new Style(17, true, true)), "past",
                LlamaPresets.tokenizer(), Map.of()).model().model();
        long[][] ones = TestLlamas.ones(2, 8);
        Map<String, Tensor> full = run(m, IDS, ones, Map.of());
        Model exported = DecoderImporter.requireGraphInputs(m.copy());
        long[][] head = {{5, 17, 33, 2, 90}, {70, 70, 12, 3, 9}};
        long[][] tail = {{61, 8, 44}, {81, 27, 50}};
        Map<String, Tensor> first = run(exported, head, TestLlamas.ones(2, 5), emptyCache(c));
        Map<String, Tensor> cache = new HashMap<>();
        for (int l = 0; l < 2; l++) {
            cache.put("past_key_values." + l + ".key", first.get("present." + l + ".key"));
            cache.put("past_key_values." + l + ".value", first.get("present." + l + ".value"));
        }
        float[] step = run(exported, tail, ones, cache).get("logits").toFloatArray();
        float[] all = full.get("logits").toFloatArray();
        int v = c.vocabSize();
        double worst = 0;
        for (int row = 0; row < 2; row++) {
            for (int t = 0; t < 3; t++) {
                for (int j = 0; j < v; j++) {
                    worst = Math.max(worst, Math.abs(step[(row * 3 + t) * v + j] - all[(row * 8 + 5 + t) * v + j]));
                }
            }
        }
        assertTrue(worst <= 1e-5, "cached step differs by " + worst);
    }

    @Test
    void positionIdsInputCountsFromTheCacheWhenNotFedAndFollowsTheFedPositions() {
        LlamaConfig c = TestLlamas.config();
        LlamaWeights w = TestLlamas.weights(c, 11);
        LlamaOnnxImporter.Result r = LlamaOnnxImporter.importModel(TorchStyleLlama.build(w,
                new Style(17, true, true, true)), "positions.onnx", LlamaPresets.tokenizer(), Map.of());
        Model m = r.model().model();
        assertTrue(r.report().recognised().containsKey("position_ids input"), r.report().describe());
        assertEquals(0, m.graph().initializer("position_ids").elementCount(), "an empty default: training feeds "
                + "only the tokens");
        // Not fed: positions 0..T-1, the native training graph's logits.
        float[] ours = TestLlamas.logits(engine, LlamaGraph.build(w, CausalLmGraphOptions.training()).model(), IDS,
                TestLlamas.ones(2, 8));
        float[] got = run(m, IDS, TestLlamas.ones(2, 8), Map.of()).get("logits").toFloatArray();
        assertTrue(maxDiff(ours, got, TestLlamas.ones(2, 8), c.vocabSize()) <= 1e-5);
        // Fed (generation numbers a left-padded row from its first real token), with the defaults dropped: the
        // native generation graph given the same positions.
        Model exported = DecoderImporter.requireGraphInputs(m.copy());
        assertEquals(null, exported.graph().initializer("position_ids"));
        Map<String, Tensor> feeds = new HashMap<>(emptyCache(c));
        feeds.put("position_ids", TestLlamas.longs(new long[][] {{0, 1, 2, 3, 4, 5, 6, 7}, {0, 0, 0, 1, 2, 3, 4, 5}}));
        float[] fed = run(exported, IDS, LEFT_PAD, feeds).get("logits").toFloatArray();
        float[] nativeFed = run(LlamaGraph.build(w, CausalLmGraphOptions.inference()).model(), IDS, LEFT_PAD, feeds)
                .get("logits").toFloatArray();
        assertTrue(maxDiff(nativeFed, fed, LEFT_PAD, c.vocabSize()) <= 1e-5);
        assertTrue(maxDiff(ours, fed, LEFT_PAD, c.vocabSize()) > 1e-3, "the fed positions must be used");
        // Not fed but with a cache (the cache inputs required, the positions left to their default): positions
        // continue from the cache length.
        Model cached = m.copy();
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            cached.graph().removeInitializer("past_key_values." + l + ".key");
            cached.graph().removeInitializer("past_key_values." + l + ".value");
        }
        Map<String, Tensor> first = run(cached, new long[][] {{5, 17, 33, 2, 90}}, TestLlamas.ones(1, 5),
                emptyCache(c, 1));
        Map<String, Tensor> cache = new HashMap<>();
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            cache.put("past_key_values." + l + ".key", first.get("present." + l + ".key"));
            cache.put("past_key_values." + l + ".value", first.get("present." + l + ".value"));
        }
        float[] step = run(cached, new long[][] {{61, 8, 44}}, TestLlamas.ones(1, 8), cache).get("logits").toFloatArray();
        float[] all = run(m, new long[][] {IDS[0]}, TestLlamas.ones(1, 8), Map.of()).get("logits").toFloatArray();
        int v = c.vocabSize();
        double worst = 0;
        for (int i = 0; i < 3 * v; i++) {
            worst = Math.max(worst, Math.abs(step[i] - all[5 * v + i]));
        }
        assertTrue(worst <= 1e-5, "cached step without fed positions differs by " + worst);
    }

    @Test
    void positionIdsOfAnotherTypeOrRankAreRefusedNamingTheFileAndInput() {
        LlamaWeights w = TestLlamas.weights(TestLlamas.config(), 2);
        for (TensorType bad : List.of(TensorType.symbolic(DataType.FLOAT, "batch", "sequence"),
                TensorType.symbolic(DataType.INT64, "sequence"))) {
            Model m = TorchStyleLlama.build(w, new Style(17, true, false, true));
            m.graph().value("position_ids").setType(bad);
            OnnxImportException e = assertThrows(OnnxImportException.class, () -> LlamaOnnxImporter.importModel(m,
                    "odd.onnx", LlamaPresets.tokenizer(), Map.of()));
            assertTrue(e.getMessage().contains("odd.onnx") && e.getMessage().contains("'position_ids'")
                    && e.getMessage().contains("int64 [batch, sequence]"), e.getMessage());
        }
    }

    private static Path mergedExport(Path dir, Model merged) throws Exception {
        OnnxFiles.writeWithExternalData(merged, dir.resolve("decoder_model_merged.onnx"),
                "decoder_model_merged.onnx_data", 1024);
        Files.write(dir.resolve("tokenizer.json"), ByteLevelBpe.tokenizerJson(List.of(),
                List.of("<|begin_of_text|>", "<|end_of_text|>")));
        return dir;
    }

    @Test
    void mergedDecoderIsReadAsItsNoPastBranchForTrainingAndItsWithPastBranchForGeneration(@TempDir Path dir)
            throws Exception {
        LlamaConfig c = TestLlamas.config();
        LlamaWeights w = TestLlamas.weights(c, 13);
        mergedExport(dir, TorchStyleLlama.merged(w, 17));
        Files.writeString(dir.resolve("config.json"), c.toJson());
        LlamaProvider llama = new LlamaProvider();
        PetAdapters registry = new PetAdapters(List.of(), List.of(llama));
        PretrainedModel training = registry.getPretrainedModel("gpt2", ModelRequest.of(dir.toString()));
        assertTrue(training.config().get(PretrainedModel.IMPORT_REPORT).toString()
                .contains("merged_decoder: merged decoder: inlined the no-past (else) branch of If 'optimum::if'"));
        assertEquals(List.of("input_ids", "attention_mask", "position_ids"), training.model().graph().inputs()
                .stream().map(Value::name).toList());
        assertTrue(training.model().graph().nodes().stream().noneMatch(n -> n.opType().equals("If")));
        float[] ours = TestLlamas.logits(engine, LlamaGraph.build(w, CausalLmGraphOptions.training()).model(), IDS,
                LEFT_PAD);
        double d = maxDiff(ours, run(training.model(), IDS, LEFT_PAD, Map.of()).get("logits").toFloatArray(),
                LEFT_PAD, c.vocabSize());
        assertTrue(d <= 1e-5, "no-past branch logits differ by " + d);

        PretrainedModel generation = registry.getPretrainedModel("gpt2", new ModelRequest(dir.toString(), Map.of(),
                0, ModelRequest.GraphForm.GENERATION));
        assertTrue(generation.config().get(PretrainedModel.IMPORT_REPORT).toString()
                .contains("inlined the with-past (then) branch"));
        Model exported = DecoderImporter.requireGraphInputs(generation.model().copy());
        assertFalse(exported.graph().inputs().stream().map(Value::name).toList().contains("use_cache_branch"));
        Map<String, Tensor> feeds = new HashMap<>(emptyCache(c));
        feeds.put("position_ids", TestLlamas.longs(new long[][] {{0, 1, 2, 3, 4, 5, 6, 7}, {0, 0, 0, 1, 2, 3, 4, 5}}));
        float[] nativeFed = run(LlamaGraph.build(w, CausalLmGraphOptions.inference()).model(), IDS, LEFT_PAD, feeds)
                .get("logits").toFloatArray();
        d = maxDiff(nativeFed, run(exported, IDS, LEFT_PAD, feeds).get("logits").toFloatArray(), LEFT_PAD,
                c.vocabSize());
        assertTrue(d <= 1e-5, "with-past branch logits differ by " + d);
    }

    @Test
    void mergedDecodersThatCannotBeReadNameTheFileAndTheNode(@TempDir Path dir) throws Exception {
        LlamaWeights w = TestLlamas.weights(TestLlamas.config(), 4);
        LlamaProvider llama = new LlamaProvider();
        // Branches whose outputs do not match: the else branch loses its last output.
        Model mismatched = TorchStyleLlama.merged(w, 17);
        dev.pet.onnx.ir.Node ifNode = mismatched.graph().nodes().get(0);
        Graph orElse = dev.pet.onnx.io.Subgraphs.read(ifNode, "else_branch");
        orElse.removeOutput(orElse.outputs().get(orElse.outputs().size() - 1));
        ifNode.setAttribute(dev.pet.onnx.io.Subgraphs.attribute("else_branch", orElse));
        Path bad = mergedExport(Files.createDirectories(dir.resolve("mismatched")), mismatched);
        var e = assertThrows(dev.pet.api.PetException.class, () -> llama.load(ModelRequest.of(bad.toString())));
        assertTrue(e.getMessage().contains("decoder_model_merged.onnx") && e.getMessage().contains(
                "If node 'optimum::if': then_branch has 5 outputs, else_branch 4, the node 5"), e.getMessage());
        // No use_cache_branch input: the If cannot be selected.
        Model unflagged = TorchStyleLlama.merged(w, 17);
        unflagged.graph().value("use_cache_branch").rename("branch");
        Path none = mergedExport(Files.createDirectories(dir.resolve("unflagged")), unflagged);
        e = assertThrows(dev.pet.api.PetException.class, () -> llama.load(ModelRequest.of(none.toString())));
        assertTrue(e.getMessage().contains("decoder_model_merged.onnx: If node 'optimum::if' produces the graph "
                + "outputs") && e.getMessage().contains("no boolean input 'use_cache_branch'"), e.getMessage());
    }

    private static Map<String, Tensor> emptyCache(LlamaConfig c) {
        return emptyCache(c, 2);
    }

    private static Map<String, Tensor> emptyCache(LlamaConfig c, int batch) {
        Map<String, Tensor> m = new HashMap<>();
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            m.put("past_key_values." + l + ".key", Tensor.zeros(DataType.FLOAT, batch, c.numKeyValueHeads(), 0,
                    c.headDim()));
            m.put("past_key_values." + l + ".value", Tensor.zeros(DataType.FLOAT, batch, c.numKeyValueHeads(), 0,
                    c.headDim()));
        }
        return m;
    }

    @Test
    void optimumDirectoryWithoutConfigIsRecognisedAsLlama(@TempDir Path dir) throws Exception {
        LlamaConfig c = TestLlamas.config();
        LlamaWeights w = TestLlamas.weights(c, 3);
        OnnxFiles.writeWithExternalData(TorchStyleLlama.build(w, new Style(17, true, true)),
                dir.resolve("model.onnx"), "model.onnx_data", 1024);
        Files.write(dir.resolve("tokenizer.json"), ByteLevelBpe.tokenizerJson(List.of(),
                List.of("<|begin_of_text|>", "<|end_of_text|>")));
        LlamaProvider llama = new LlamaProvider();
        assertTrue(llama.recognisesOnnx(OnnxFiles.read(dir.resolve("model.onnx"))));
        PetAdapters registry = new PetAdapters(List.of(), List.of(llama));
        PretrainedModel pm = registry.getPretrainedModel("gpt2", ModelRequest.of(dir.toString()));
        assertEquals("llama", pm.providerId());
        assertEquals(2L, pm.anatomy().numKeyValueHeads());
        assertTrue(pm.config().get(PretrainedModel.IMPORT_REPORT).toString().contains("max_position_embeddings"));
        // With config.json the family and limits come from it.
        Files.writeString(dir.resolve("config.json"), c.toJson());
        PretrainedModel withConfig = registry.getPretrainedModel("gpt2", ModelRequest.of(dir.toString()));
        assertEquals(64L, withConfig.maxPositions());
        float[] ours = TestLlamas.logits(engine, LlamaGraph.build(w, CausalLmGraphOptions.training()).model(), IDS,
                LEFT_PAD);
        assertTrue(maxDiff(ours, run(withConfig.model(), IDS, LEFT_PAD, Map.of()).get("logits").toFloatArray(),
                LEFT_PAD, c.vocabSize()) <= 1e-5);
        assertFalse(withConfig.model().graph().inputs().stream().map(Value::name).toList().isEmpty());
    }
}
