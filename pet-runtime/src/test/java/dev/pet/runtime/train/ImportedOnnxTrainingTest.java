package dev.pet.runtime.train;

import dev.pet.runtime.plugin.PluginKind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoraAdapter;
import ai.onnxruntime.OrtSession;
import dev.pet.api.PetException;
import dev.pet.gpt2.Gpt2Checkpoint;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.gpt2.onnx.TorchStyleGpt2;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Mask;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Projection;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Style;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fine-tuning an ONNX export: the same GPT-2 weights as a Hugging Face directory and as an Optimum-style with-past
 * export laid out like torch.onnx.export (nn.Linear Gemms with renamed [out, in] weights, decomposed LayerNorm and
 * gelu, a Where causal mask, external data). LoRA from the same seed gives the same 20-step AdamW loss curve on
 * both within 1e-5 (the same float32 math in another op order), and the exports keep the graph's own contract.
 */
class ImportedOnnxTrainingTest {
    private static final int STEPS = 20;
    private static final Style OPTIMUM_WITH_PAST = new Style(17, Projection.LINEAR_GEMM, false, Mask.WHERE, true,
            true, true);
    @TempDir
    static Path dir;
    static Path onnxDir;
    static Path nativeDir;
    static Path corpus;
    static List<Double> nativeLosses;
    static List<Double> importedLosses;
    static RunConfig importedRun;
    static RunEnvironment env;

    @BeforeAll
    static void trainBoth() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        Gpt2Weights weights = TorchStyleGpt2.weights(Gpt2Config.preset("gpt2-tiny"), 5);
        nativeDir = dir.resolve("native");
        Gpt2Checkpoint.save(weights, nativeDir);
        onnxDir = dir.resolve("optimum");
        Files.createDirectories(onnxDir);
        OnnxFiles.writeWithExternalData(TorchStyleGpt2.build(weights, OPTIMUM_WITH_PAST),
                onnxDir.resolve("model.onnx"), "model.onnx_data", 1024);
        Files.writeString(onnxDir.resolve("config.json"), "{\"model_type\": \"gpt2\", \"n_head\": 4}");
        corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The keeper trims the wick and winds the clock before the fog comes in.\n"
                .repeat(12));
        nativeLosses = new ArrayList<>();
        importedLosses = new ArrayList<>();
        train(nativeDir, corpus, nativeLosses, "native-run");
        importedRun = train(onnxDir, corpus, importedLosses, "imported-run");
        env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                ImportedOnnxTrainingTest.class.getClassLoader(), null), new TrainingListener() { },
                TokenCache.defaultCache(), new PrintStream(System.out));
    }

    private static RunConfig train(Path model, Path corpus, List<Double> losses, String out) {
        return train(model, corpus, losses, out, "lora", Map.of("r", 4, "lora_alpha", 8, "lora_dropout", 0.0), STEPS);
    }

    private static RunConfig train(Path model, Path corpus, List<Double> losses, String out, String pet,
            Map<String, Object> petConfig, int steps) {
        Trainer t = Trainer.builder().model(model.toString()).petMethod(pet)
                .petConfig(petConfig).trainDataset(corpus).seqLength(16)
                .batchSize(2).maxSteps(steps).learningRate(1e-2).outputDir(dir.resolve(out)).seed(3).build()
                .withListener(new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics s) {
                        losses.add(s.loss());
                    }
                });
        t.finetune();
        return t.config();
    }

    @Test
    void loraOnTheImportedGraphFollowsTheNativeLossCurve() {
        assertEquals(STEPS, nativeLosses.size());
        assertEquals(STEPS, importedLosses.size());
        double worst = 0;
        for (int i = 0; i < STEPS; i++) {
            worst = Math.max(worst, Math.abs(nativeLosses.get(i) - importedLosses.get(i)));
        }
        assertTrue(worst <= 1e-5, "loss curves differ by " + worst + ": " + nativeLosses + " vs " + importedLosses);
        assertTrue(nativeLosses.get(STEPS - 1) < nativeLosses.get(0) - 0.1, "LoRA must learn: " + nativeLosses);
    }

    @Test
    void prefixTuningAndAdaptersOnTheImportedGraphFollowTheNativeLossCurve() {
        // They need the recovered anatomy: keys, values, attention bias and position ids; projection outputs.
        Map<String, Map<String, Object>> methods = Map.of(
                "prefix_tuning", Map.of("num_virtual_tokens", 3),
                "adapter", Map.of("bottleneck_size", 8));
        methods.forEach((pet, cfg) -> {
            List<Double> a = new ArrayList<>();
            List<Double> b = new ArrayList<>();
            train(nativeDir, corpus, a, pet + "-native", pet, cfg, 8);
            train(onnxDir, corpus, b, pet + "-imported", pet, cfg, 8);
            double worst = 0;
            for (int i = 0; i < a.size(); i++) {
                worst = Math.max(worst, Math.abs(a.get(i) - b.get(i)));
            }
            assertEquals(8, b.size());
            assertTrue(worst <= 1e-5, pet + ": loss curves differ by " + worst + ": " + a + " vs " + b);
            assertTrue(a.get(7) < a.get(0), pet + " must learn: " + a);
        });
    }

    @Test
    void exportsKeepTheGraphsInputsAndOutputsAndServeTheTrainedModel() throws Exception {
        DefaultPetEngine engine = new DefaultPetEngine();
        Path merged = dir.resolve("merged.onnx");
        engine.export(new ExportRequest(importedRun, null, ExportRequest.Format.MERGED_ONNX, merged, false), env);
        Model m = OnnxFiles.read(merged);
        assertEquals(List.of("input_ids", "attention_mask", "past_key_values.0.key", "past_key_values.0.value",
                "past_key_values.1.key", "past_key_values.1.value"), m.graph().inputs().stream().map(Value::name)
                .toList());
        assertTrue(m.graph().outputs().stream().map(Value::name).toList().containsAll(List.of("logits",
                "present.0.key", "present.0.value", "present.1.key", "present.1.value")));
        assertNull(m.graph().initializer("past_key_values.0.key"), "the cache is an input again, no default");
        Path ort = dir.resolve("ort");
        engine.export(new ExportRequest(importedRun, null, ExportRequest.Format.ORT_ADAPTER, ort, false), env);
        OrtEnvironment e = OrtEnvironment.getEnvironment();
        float[] mergedLogits;
        try (OrtSession s = e.createSession(merged.toString(), new OrtSession.SessionOptions())) {
            mergedLogits = run(e, s, null);
        }
        float[] baseLogits;
        float[] servedLogits;
        try (OrtSession s = e.createSession(ort.resolve(DefaultPetEngine.ORT_MODEL).toString(),
                new OrtSession.SessionOptions());
                OrtLoraAdapter lora = OrtLoraAdapter.create(ort.resolve(DefaultPetEngine.ORT_ADAPTER).toString());
                OrtSession.RunOptions opts = new OrtSession.RunOptions()) {
            baseLogits = run(e, s, null);
            opts.addActiveLoraAdapter(lora);
            servedLogits = run(e, s, opts);
        }
        assertTrue(maxDiff(mergedLogits, servedLogits) <= 1e-5, "adapter served vs merged: "
                + maxDiff(mergedLogits, servedLogits));
        assertTrue(maxDiff(mergedLogits, baseLogits) > 1e-3, "the trained adapter must change the logits");
    }

    /** Logits of [7, 8, 9, 10] with an empty cache, as a first generation step feeds it. */
    private static float[] run(OrtEnvironment e, OrtSession s, OrtSession.RunOptions opts) throws Exception {
        long[] ids = {7, 8, 9, 10};
        Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
        try {
            feeds.put("input_ids", OnnxTensor.createTensor(e, LongBuffer.wrap(ids), new long[] {1, 4}));
            feeds.put("attention_mask", OnnxTensor.createTensor(e, LongBuffer.wrap(new long[] {1, 1, 1, 1}),
                    new long[] {1, 4}));
            for (int l = 0; l < 2; l++) {
                for (String kind : List.of("key", "value")) {
                    feeds.put("past_key_values." + l + "." + kind, OnnxTensor.createTensor(e, FloatBuffer.allocate(0),
                            new long[] {1, 4, 0, 16}));
                }
            }
            try (OrtSession.Result r = opts == null ? s.run(feeds, Set.of("logits"))
                    : s.run(feeds, Set.of("logits"), opts)) {
                FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
                float[] out = new float[fb.remaining()];
                fb.get(out);
                return out;
            }
        } finally {
            feeds.values().forEach(OnnxTensor::close);
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    @Test
    void inspectListsTheRecognisedModulesAndTheImport() {
        ModelInspection i = new DefaultPetEngine().inspect(importedRun, env);
        String text = String.join("\n", i.anatomy());
        assertTrue(text.contains("linear transformer.h.*.attn.c_attn x2 64->192"), text);
        assertTrue(text.contains("linear transformer.h.*.mlp.c_proj x2 256->64"), text);
        assertTrue(text.contains("every part recognised"), text);
        assertTrue(text.contains("past_key_values"), text);
        assertTrue(text.contains("found causal_mask: verified"), text);
    }

    @Test
    void methodsNeedingMissingAnatomySayWhatIsMissing() throws Exception {
        // The same export with the attention output projection anonymous: LoRA still trains what it finds, prefix
        // tuning names the parts it lacks.
        Path partial = dir.resolve("partial");
        Files.createDirectories(partial);
        Model m = OnnxFiles.read(onnxDir.resolve("model.onnx"));
        m.graph().nodes().stream().filter(n -> n.name().startsWith("/transformer/h.0/attn/c_proj/"))
                .forEach(n -> n.setName("anon_" + Integer.toHexString(n.name().hashCode())));
        OnnxFiles.write(m, partial.resolve("model.onnx"));
        var registry = new dev.pet.api.PetAdapters(List.of(new dev.pet.prefix.PrefixTuningAdapter()),
                List.of(new dev.pet.gpt2.Gpt2Provider()));
        var base = registry.getPretrainedModel("gpt2", dev.pet.api.ModelRequest.of(partial.toString()));
        var prefix = registry.adapter("prefix_tuning");
        PetException ex = org.junit.jupiter.api.Assertions.assertThrows(PetException.class,
                () -> prefix.getPetModel(base, Map.of("num_virtual_tokens", 2)));
        assertTrue(ex.getMessage().contains("lacks key (layers [0]), value (layers [0]), attention_bias (layers [0])")
                && ex.getMessage().contains("NOT FOUND transformer.h.0.attn.c_proj"), ex.getMessage());
        var lora = new dev.pet.lora.LoraAdapter();
        var pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 2)));
        assertTrue(pet.trainables().size() > 0);
    }

    @Test
    void loraOnAnImportedLlamaExportFollowsTheNativeLossCurve() throws Exception {
        // Llama family: GQA (4 heads, 2 key/value heads) through repeat_kv, RoPE from in-graph positions, RMSNorm
        // decomposed, renamed weights, with-past inputs. The native side is the preset, whose weights are seeded by
        // the run's seed (3); the export carries the same weights, config and tokenizer.
        dev.pet.llama.LlamaWeights w = dev.pet.llama.LlamaWeights.random(
                dev.pet.llama.LlamaPresets.config("llama-tiny"), 3);
        byte[] tokenizer = dev.pet.hf.ByteLevelBpe.tokenizerJson(List.of(), List.of("<|begin_of_text|>",
                "<|end_of_text|>"));
        Path onnx = dir.resolve("llama-optimum");
        Files.createDirectories(onnx);
        OnnxFiles.writeWithExternalData(dev.pet.llama.TorchStyleLlama.build(w,
                new dev.pet.llama.TorchStyleLlama.Style(17, true, true)), onnx.resolve("model.onnx"),
                "model.onnx_data", 1024);
        Files.writeString(onnx.resolve("config.json"), w.config().toJson());
        Files.write(onnx.resolve("tokenizer.json"), tokenizer);
        List<Double> a = new ArrayList<>();
        List<Double> b = new ArrayList<>();
        Map<String, Object> lora = Map.of("r", 4, "lora_alpha", 8, "lora_dropout", 0.0, "target_modules",
                List.of("q_proj", "v_proj", "down_proj"));
        train(Path.of("llama-tiny"), corpus, a, "llama-native-run", "lora", lora, STEPS);
        train(onnx, corpus, b, "llama-imported-run", "lora", lora, STEPS);
        double worst = 0;
        for (int i = 0; i < STEPS; i++) {
            worst = Math.max(worst, Math.abs(a.get(i) - b.get(i)));
        }
        assertEquals(STEPS, b.size());
        assertTrue(worst <= 1e-5, "Llama loss curves differ by " + worst + ": " + a + " vs " + b);
        assertTrue(a.get(STEPS - 1) < a.get(0) - 0.1, "LoRA must learn: " + a);
    }
}
