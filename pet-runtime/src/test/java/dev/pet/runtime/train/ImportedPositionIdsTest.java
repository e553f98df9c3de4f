package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.hf.ByteLevelBpe;
import dev.pet.llama.LlamaPresets;
import dev.pet.llama.LlamaWeights;
import dev.pet.llama.TorchStyleLlama;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Exports whose positions are the graph input {@code position_ids} (as Optimum and torch.onnx.export write Llama):
 * the import gives the input an empty default meaning "past, past+1, ...", so training and evaluation feed only the
 * tokens, while generation feeds each row's positions (left padding counts from the first real token). Against the
 * native model from the same weights: the same LoRA and prefix-tuning loss curves, the same evaluation loss, and the
 * same greedy tokens from the with-past export (KV cache) and from the export without past (recomputed per token).
 * Optimum's merged decoder (an If on {@code use_cache_branch}) trains through its no-past branch and generates
 * through its with-past branch with the same numbers.
 */
class ImportedPositionIdsTest {
    private static final int STEPS = 20;
    private static final Map<String, Object> LORA = Map.of("r", 4, "lora_alpha", 8, "lora_dropout", 0.0,
            "target_modules", List.of("q_proj", "v_proj", "down_proj"));
    private static final Map<String, Object> PREFIX = Map.of("num_virtual_tokens", 3);
    private static final List<String> PROMPTS = List.of("The keeper", "Fog rolls over the harbour before");
    @TempDir
    static Path dir;
    static Path withPast;
    static Path noPast;
    static Path merged;
    static Path corpus;
    static RunEnvironment env;
    static final List<Double> NATIVE = new ArrayList<>();
    static final List<Double> IMPORTED = new ArrayList<>();
    static RunConfig nativeRun;
    static RunConfig importedRun;

    @BeforeAll
    static void exportAndTrain() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        // llama-tiny's weights are seeded by the run's seed (3): the exports carry the same weights.
        LlamaWeights w = LlamaWeights.random(LlamaPresets.config("llama-tiny"), 3);
        withPast = export(w, "with-past", true);
        noPast = export(w, "no-past", false);
        merged = dir.resolve("merged");
        Files.createDirectories(merged);
        OnnxFiles.writeWithExternalData(TorchStyleLlama.merged(w, 17), merged.resolve("decoder_model_merged.onnx"),
                "decoder_model_merged.onnx_data", 1024);
        Files.copy(withPast.resolve("config.json"), merged.resolve("config.json"));
        Files.copy(withPast.resolve("tokenizer.json"), merged.resolve("tokenizer.json"));
        corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The keeper trims the wick and winds the clock before the fog comes in.\n"
                .repeat(12));
        env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                ImportedPositionIdsTest.class.getClassLoader(), null), new TrainingListener() { },
                TokenCache.defaultCache(), new PrintStream(System.out));
        nativeRun = train("llama-tiny", "native-lora", "lora", LORA, STEPS, NATIVE);
        importedRun = train(withPast.toString(), "imported-lora", "lora", LORA, STEPS, IMPORTED);
    }

    private static Path export(LlamaWeights w, String name, boolean past) throws Exception {
        Path d = dir.resolve(name);
        Files.createDirectories(d);
        OnnxFiles.writeWithExternalData(TorchStyleLlama.build(w, new TorchStyleLlama.Style(17, true, past, true)),
                d.resolve("model.onnx"), "model.onnx_data", 1024);
        Files.writeString(d.resolve("config.json"), w.config().toJson());
        Files.write(d.resolve("tokenizer.json"), ByteLevelBpe.tokenizerJson(List.of(), List.of("<|begin_of_text|>",
                "<|end_of_text|>")));
        return d;
    }

    private static Trainer trainer(String model, String out, String pet, Map<String, Object> cfg, int steps,
            List<Double> losses) {
        return Trainer.builder().model(model).petMethod(pet).petConfig(cfg).trainDataset(corpus).evalDataset(corpus)
                .seqLength(16).batchSize(2).maxSteps(steps).learningRate(1e-2).outputDir(dir.resolve(out)).seed(3)
                .build().withListener(new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics s) {
                        losses.add(s.loss());
                    }
                });
    }

    private static RunConfig train(String model, String out, String pet, Map<String, Object> cfg, int steps,
            List<Double> losses) {
        Trainer t = trainer(model, out, pet, cfg, steps, losses);
        t.finetune();
        return t.config();
    }

    private static double worst(List<Double> a, List<Double> b) {
        assertEquals(a.size(), b.size());
        double d = 0;
        for (int i = 0; i < a.size(); i++) {
            d = Math.max(d, Math.abs(a.get(i) - b.get(i)));
        }
        return d;
    }

    /** Greedy completions of {@link #PROMPTS} (one left-padded batch) by {@code model} with {@code adapter}. */
    private static List<String> generate(String model, Path adapter, String pet, Map<String, Object> cfg) {
        RunConfig c = trainer(model, "gen-" + Path.of(model).getFileName(), pet, cfg, 1, new ArrayList<>()).config();
        List<Completion> out = new DefaultPetEngine().generate(new GenerateRequest(c, adapter, PROMPTS, 12, 0, 0, 1,
                1, 1, List.of()), env, TextSink.none());
        assertEquals(12, out.get(0).completionTokens());
        return out.stream().map(Completion::text).toList();
    }

    @Test
    void loraOnAnExportWithPositionIdsFollowsTheNativeLossCurve() {
        assertEquals(STEPS, IMPORTED.size());
        assertTrue(worst(NATIVE, IMPORTED) <= 1e-5, "loss curves differ: " + NATIVE + " vs " + IMPORTED);
        assertTrue(NATIVE.get(STEPS - 1) < NATIVE.get(0) - 0.1, "LoRA must learn: " + NATIVE);
    }

    @Test
    void evaluatesAsTheNativeModel() {
        DefaultPetEngine engine = new DefaultPetEngine();
        var a = engine.evaluate(new dev.pet.runtime.EvalRequest(nativeRun, null), env);
        var b = engine.evaluate(new dev.pet.runtime.EvalRequest(importedRun, null), env);
        assertEquals(a.tokens(), b.tokens());
        assertTrue(Math.abs(a.loss() - b.loss()) <= 1e-5, a + " vs " + b);
    }

    @Test
    void generatesTheNativeTokensWithAndWithoutTheCache() {
        Path adapter = importedRun.outputDir().resolve("adapter");
        List<String> want = generate("llama-tiny", nativeRun.outputDir().resolve("adapter"), "lora", LORA);
        assertEquals(want, generate(withPast.toString(), adapter, "lora", LORA), "with the KV cache");
        assertEquals(want, generate(noPast.toString(), adapter, "lora", LORA), "without past inputs");
    }

    @Test
    void mergedDecoderTrainsAndGeneratesAsTheNativeModel() {
        List<Double> losses = new ArrayList<>();
        RunConfig run = train(merged.toString(), "merged-lora", "lora", LORA, STEPS, losses);
        assertTrue(worst(NATIVE, losses) <= 1e-5, "merged decoder loss curve differs: " + NATIVE + " vs " + losses);
        List<String> want = generate("llama-tiny", nativeRun.outputDir().resolve("adapter"), "lora", LORA);
        assertEquals(want, generate(merged.toString(), run.outputDir().resolve("adapter"), "lora", LORA));
    }

    @Test
    void inspectReportsThePositionInputTheMergedDecoderAndTheCausalMask() {
        DefaultPetEngine engine = new DefaultPetEngine();
        String text = String.join("\n", engine.inspect(importedRun, env).anatomy());
        assertTrue(text.contains("found position_ids input: graph input 'position_ids' kept with an empty default")
                && text.contains("found causal_mask: verified"), text);
        RunConfig m = trainer(merged.toString(), "merged-inspect", "lora", LORA, 1, new ArrayList<>()).config();
        String mergedText = String.join("\n", engine.inspect(m, env).anatomy());
        assertTrue(mergedText.contains("found merged_decoder: merged decoder: inlined the no-past (else) branch of If "
                + "'optimum::if' (use_cache_branch = false); dropped the unused inputs past_key_values.0.key"),
                mergedText);
    }

    @Test
    void prefixTuningShiftsThePositionsAsOnTheNativeModel() {
        // Real tokens sit at positions P..P+T-1 in training (computed positions) and in generation (fed ones).
        List<Double> a = new ArrayList<>();
        List<Double> b = new ArrayList<>();
        RunConfig n = train("llama-tiny", "native-prefix", "prefix_tuning", PREFIX, 8, a);
        RunConfig i = train(withPast.toString(), "imported-prefix", "prefix_tuning", PREFIX, 8, b);
        assertTrue(worst(a, b) <= 1e-5, "prefix tuning loss curves differ: " + a + " vs " + b);
        assertTrue(a.get(7) < a.get(0), "prefix tuning must learn: " + a);
        List<String> want = generate("llama-tiny", n.outputDir().resolve("adapter"), "prefix_tuning", PREFIX);
        assertEquals(want, generate(withPast.toString(), i.outputDir().resolve("adapter"), "prefix_tuning", PREFIX));
        assertEquals(want, generate(noPast.toString(), i.outputDir().resolve("adapter"), "prefix_tuning", PREFIX));
    }
}
