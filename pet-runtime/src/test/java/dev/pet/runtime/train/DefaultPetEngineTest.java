package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import dev.pet.runtime.plugin.PluginKind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.api.ModelRequest;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtAdapter;
import dev.pet.engine.OrtEngine;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** generate, eval, export and inspect on a run's final adapter and on the base model. */
class DefaultPetEngineTest {
    @TempDir
    static Path dir;
    static RunConfig config;
    static RunEnvironment env;
    final DefaultPetEngine engine = new DefaultPetEngine();

    @BeforeAll
    static void train() throws Exception {
        Path corpus = dir.resolve("c.txt");
        Files.writeString(corpus, "Sound the horn in fog and light the lamp at dusk.\n".repeat(10));
        System.setProperty("user.home", dir.resolve("home").toString());
        Trainer t = Trainer.builder().model("gpt2-tiny").petMethod("lora").petConfig(Map.of("r", 4))
                .trainDataset(corpus).seqLength(16).batchSize(2).maxSteps(8).learningRate(1e-2).outputDir(dir.resolve("run")).seed(3)
                .build();
        t.finetune();
        config = t.config();
        env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                DefaultPetEngineTest.class.getClassLoader(), null), new TrainingListener() { },
                TokenCache.defaultCache(), new PrintStream(System.out));
    }

    /** A run config naming only gpt2-tiny (no PET method), as {@code pet generate --model gpt2-tiny} makes. */
    private static RunConfig baseModel(List<String> overrides) {
        // The trained run's seed, so that the random gpt2-tiny weights are the same.
        List<String> all = new ArrayList<>(List.of("model.model_config.checkpoint_name_or_path=gpt2-tiny", "seed=3"));
        all.addAll(overrides);
        return dev.pet.runtime.config.RunConfigLoader.parse("{}", "base model", all);
    }

    private String generate(String prompt, int maxNew, double temperature, int topK, long seed) {
        return engine.generate(GenerateRequest.of(config, null, prompt, maxNew, temperature, topK, seed), env,
                TextSink.none()).get(0).text();
    }

    @Test
    void generatesDeterministicallyAfterThePrompt() {
        String a = generate("Sound the", 8, 0, 0, 1);
        assertEquals(a, generate("Sound the", 8, 0, 0, 1), "greedy decoding is deterministic");
        assertFalse(a.isEmpty());
        String sampled = generate("Sound the", 8, 1.0, 40, 7);
        assertEquals(sampled, generate("Sound the", 8, 1.0, 40, 7), "seeded sampling repeats");
    }

    @Test
    void streamsWhatItReturnsAndCutsAtStopStrings() {
        StringBuilder streamed = new StringBuilder();
        GenerateRequest r = new GenerateRequest(config, null, List.of("Sound the"), 12, 0, 0, 1, 1, 1, List.of());
        Completion full = engine.generate(r, env, (row, d) -> streamed.append(d) != null).get(0);
        assertEquals(full.text(), streamed.toString());
        assertEquals(12, full.completionTokens());
        assertEquals("length", full.finishReason());
        // Stop at a piece of the greedy text: the completion ends right before it, and so does the stream.
        String stop = full.text().substring(full.text().length() / 2, full.text().length() / 2 + 3);
        StringBuilder cut = new StringBuilder();
        Completion stopped = engine.generate(new GenerateRequest(config, null, List.of("Sound the"), 12, 0, 0, 1, 1,
                1, List.of(stop)), env, (row, d) -> cut.append(d) != null).get(0);
        assertEquals(full.text().substring(0, full.text().indexOf(stop)), stopped.text());
        assertEquals(stopped.text(), cut.toString());
        assertEquals("stop", stopped.finishReason());
    }

    @Test
    void aBatchGivesEachPromptWhatItGetsAlone() {
        List<String> prompts = List.of("Sound the", "light", "in fog and light the lamp");
        GenerateRequest batch = new GenerateRequest(config, null, prompts, 6, 0.8, 20, 0.95, 1.1, 9, List.of());
        List<Completion> together = engine.generate(batch, env, TextSink.none());
        for (int i = 0; i < prompts.size(); i++) {
            GenerateRequest one = new GenerateRequest(config, null, List.of(prompts.get(i)), 6, 0.8, 20, 0.95, 1.1, 9,
                    List.of());
            assertEquals(engine.generate(one, env, TextSink.none()).get(0), together.get(i), prompts.get(i));
        }
    }

    @Test
    void truncatesAPromptLongerThanThePositionsFromTheLeftAndSaysSo() {
        // gpt2-tiny has 128 positions; this prompt has far more tokens.
        String longPrompt = "Sound the horn in fog and light the lamp at dusk. ".repeat(40);
        List<String> warnings = new ArrayList<>();
        Completion c = engine.generate(new GenerateRequest(config, null, List.of(longPrompt), 5, 0, 0, 1, 1, 1,
                List.of()), env, new TextSink() {
                    @Override
                    public boolean accept(int row, String delta) {
                        return true;
                    }

                    @Override
                    public void warning(String message) {
                        warnings.add(message);
                    }
                }).get(0);
        assertEquals(123, c.promptTokens());
        assertEquals(5, c.completionTokens());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("keeping its last 123"), warnings.get(0));
    }

    @Test
    void generatesFromABaseModelWithoutPet() {
        RunConfig base = baseModel(List.of());
        Completion c = engine.generate(GenerateRequest.of(base, null, "Sound the", 4, 0, 0, 1), env,
                TextSink.none()).get(0);
        assertEquals(4, c.completionTokens());
        PetException e = assertThrows(PetException.class, () -> engine.generate(GenerateRequest.of(base,
                config.outputDir().resolve("adapter"), "x", 2, 0, 0, 1), env, TextSink.none()));
        assertTrue(e.getMessage().contains("pet_config"), e.getMessage());
    }

    @Test
    void evaluatesABaseModelAndAnAdapterWithAnEvalOnlyGraphAndWritesResults() throws Exception {
        Path corpus = dir.resolve("c.txt");
        Path out = dir.resolve("eval-base");
        RunConfig base = baseModel(List.of("output_dir=" + out,
                "model.model_config.seq_length=16", "eval_dataset.data_loader.type=text",
                "eval_dataset.data_loader.dataset_dir=" + corpus));
        var m = engine.evaluate(new dev.pet.runtime.EvalRequest(base, null), env);
        assertTrue(m.tokens() > 0 && m.loss() > 0, m.toString());
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                out.resolve(DefaultPetEngine.EVAL_RESULTS).toFile());
        assertEquals(m.loss(), json.get("loss").asDouble(), 1e-12);
        assertEquals(m.perplexity(), json.get("perplexity").asDouble(), 1e-9);
        assertEquals(m.tokens(), json.get("tokens").asLong());
        assertEquals("none", json.get("pet_type").asText());
        // The trained adapter was fitted to this text: its loss is lower than the base model's.
        RunConfig tuned = dev.pet.runtime.config.RunConfigLoader.parse(config.toYaml(), "trained run", List.of(
                "eval_dataset.data_loader.type=text", "eval_dataset.data_loader.dataset_dir=" + corpus));
        var withAdapter = engine.evaluate(new dev.pet.runtime.EvalRequest(tuned, null), env);
        assertTrue(withAdapter.loss() < m.loss(), withAdapter + " vs base " + m);
    }

    @Test
    void exportsAMergedModelThatGeneratesWhatTheAdapterDoes() throws Exception {
        Path merged = dir.resolve("merged.onnx");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.MERGED_ONNX, merged, false), env);
        RunSetup s = new RunSetup(config, env, ModelRequest.GraphForm.GENERATION);
        var pet = s.withAdapter(config.outputDir().resolve("adapter"));
        long[] ids = {7, 8, 9, 10};
        GenerationConfig greedy = GenerationConfig.greedy(10);
        try (OrtEngine e = OrtEngine.cpu()) {
            long[] fromMerged = new Generator(e.compile(OnnxFiles.read(merged)), 128).generate(ids, greedy);
            long[] fromAdapter = new Generator(e.compile(pet.inferenceModel()), 128).generate(ids, greedy);
            assertArrayEquals(fromAdapter, fromMerged);
        }
    }

    /**
     * {@code export --format merged-onnx --quantize}: the run's adapter merged on its quantized base, the merged weights
     * quantized again with the run's settings; refused without quantization settings and for other formats.
     */
    @Test
    void exportsAMergedModelQuantizedAgain() throws Exception {
        RunConfig quantized = dev.pet.runtime.config.RunConfigLoader.parse(config.toYaml(), "quantized run",
                List.of("model.model_config.quantization.bits=8", "model.model_config.quantization.block_size=32",
                        "model.model_config.quantization.lm_head=true",
                        "model.model_config.quantization.embeddings=true"));
        Path out = dir.resolve("merged-q8.onnx");
        engine.export(new ExportRequest(quantized, null, ExportRequest.Format.MERGED_ONNX, out, false, true), env);
        dev.pet.onnx.ir.Model m = OnnxFiles.read(out);
        assertTrue(dev.pet.onnx.quant.QuantizedLinears.hasQuantizedWeights(m), "the export computes with quantized weights");
        assertTrue(m.graph().nodes().stream().anyMatch(n -> n.opType().equals(
                dev.pet.onnx.quant.QuantizedLinears.GATHER_OP)), "the token lookup reads the quantized table");
        assertTrue(m.graph().initializers().keySet().stream().noneMatch(n -> n.endsWith("wte.weight")),
                "no float embedding table: " + m.graph().initializers().keySet());
        long[] ids = {7, 8, 9, 10};
        try (OrtEngine e = OrtEngine.cpu()) {
            assertEquals(10, new Generator(e.compile(m), 128).generate(ids, GenerationConfig.greedy(10)).length,
                    "the exported model generates");
        }
        // kernel matmul_integer: the model file carries the function its int8 products call
        RunConfig int8 = dev.pet.runtime.config.RunConfigLoader.parse(config.toYaml(), "int8 run",
                List.of("model.model_config.quantization.kernel=matmul_integer",
                        "model.model_config.quantization.lm_head=true"));
        Path int8Out = dir.resolve("merged-int8.onnx");
        engine.export(new ExportRequest(int8, null, ExportRequest.Format.MERGED_ONNX, int8Out, false, true), env);
        dev.pet.onnx.ir.Model mi = OnnxFiles.read(int8Out);
        assertTrue(mi.graph().nodes().stream().anyMatch(dev.pet.onnx.quant.IntegerLinears::isProduct),
                "the export multiplies in int8");
        assertEquals(1, ((dev.pet.onnx.proto.OnnxProto.ModelProto) mi.residual()).getFunctionsCount());
        try (OrtEngine e = OrtEngine.cpu()) {
            assertEquals(10, new Generator(e.compile(mi), 128).generate(ids, GenerationConfig.greedy(10)).length,
                    "the exported int8 model generates");
        }
        PetException noSettings = assertThrows(PetException.class, () -> engine.export(new ExportRequest(config, null,
                ExportRequest.Format.MERGED_ONNX, dir.resolve("q.onnx"), false, true), env));
        assertTrue(noSettings.getMessage().contains("model.model_config.quantization"), noSettings.getMessage());
        IllegalArgumentException peft = assertThrows(IllegalArgumentException.class, () -> new ExportRequest(quantized,
                null, ExportRequest.Format.PEFT, dir.resolve("p"), false, true));
        assertTrue(peft.getMessage().contains("merged-onnx"), peft.getMessage());
    }

    @Test
    void exportsPeft() throws Exception {
        Path peft = dir.resolve("peft");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.PEFT, peft, false), env);
        assertTrue(Files.isRegularFile(peft.resolve(LoraAdapter.CONFIG_FILE)));
        assertTrue(Files.isRegularFile(peft.resolve(LoraAdapter.WEIGHTS_FILE)));
        PetException e = assertThrows(PetException.class, () -> engine.export(new ExportRequest(config,
                dir.resolve("nowhere"), ExportRequest.Format.PEFT, dir.resolve("p2"), false), env));
        assertTrue(e.getMessage().contains("nowhere"), e.getMessage());
    }

    @Test
    void exportsAnOnnxRuntimeLoraAdapterThatServesTheTrainedModel() throws Exception {
        Path out = dir.resolve("ort");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.ORT_ADAPTER, out, false), env);
        RunSetup s = new RunSetup(config, env, ModelRequest.GraphForm.GENERATION);
        // Large random LoRA factors, so that the adapter visibly changes what the model generates.
        java.util.Random rnd = new java.util.Random(5);
        Map<String, Tensor> random = new java.util.LinkedHashMap<>();
        s.pet.trainableTensors().forEach((name, t) -> {
            float[] v = new float[(int) t.elementCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.5 * rnd.nextGaussian());
            }
            random.put(name, Tensor.ofFloats(v, t.shape()));
        });
        var trained = s.pet.withTrainables(random);
        Path adapterFile = out.resolve("random.onnx_adapter");
        dev.pet.onnx.io.OrtAdapterFile.write(adapterFile, random, 1, 1);
        long[] ids = {7, 8, 9, 10};
        GenerationConfig sampling = GenerationConfig.sampling(12, 0.9, 30, 1.0, 4);
        try (OrtEngine e = OrtEngine.cpu();
                OrtAdapter adapter = OrtAdapter.load("a", adapterFile)) {
            long[] expectTrained = new Generator(e.compile(trained.inferenceModel()), 128).generate(ids, sampling);
            long[] expectBase = new Generator(e.compile(s.base.model()), 128).generate(ids, sampling);
            Generator serving = new Generator(e.compile(OnnxFiles.read(out.resolve(DefaultPetEngine.ORT_MODEL))), 128);
            assertArrayEquals(expectBase, serving.generate(ids, sampling), "no adapter: the base model");
            assertArrayEquals(expectTrained, serving.generate(List.of(ids), sampling, adapter,
                    Generator.TokenSink.none()).get(0), "adapter active: the trained model");
            assertFalse(Arrays.equals(expectBase, expectTrained), "the adapter changes the model");
            // The exported adapter file loads too.
            OrtAdapter.load("trained", out.resolve(DefaultPetEngine.ORT_ADAPTER)).close();
        }
    }

    @Test
    void inspectsParametersAndOps() {
        ModelInspection i = engine.inspect(config, env);
        assertEquals("gpt2-tiny", i.model());
        assertEquals("lora", i.pet());
        assertEquals(2 * 4 * (64 + 192), i.trainableParameters(), "r=4 on both c_attn");
        assertTrue(i.parameters() > 3_000_000);
        assertTrue(i.opCounts().get("MatMul") > 10);
    }

    @Test
    void exportRefusesToReplaceAnExistingOutputWithoutForce() throws Exception {
        Path out = dir.resolve("existing-peft");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> engine.export(
                new ExportRequest(config, null, ExportRequest.Format.PEFT, out, false), env));
        assertEquals(out + " already exists; pass --force to replace it", e.getMessage());
        assertEquals("mine", Files.readString(out.resolve("keep.txt")), "untouched");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.PEFT, out, true), env);
        assertTrue(Files.isRegularFile(out.resolve(LoraAdapter.WEIGHTS_FILE)));
        assertTrue(!Files.exists(out.resolve("keep.txt")), "--force replaces the directory whole");
        assertEquals(java.util.List.of("existing-peft"), siblingsOf(out, "existing-peft"));
    }

    @Test
    void aFailedExportLeavesNoTemporaryFilesAndTheOldOutputIntact() throws Exception {
        Path parent = Files.createDirectories(dir.resolve("failing"));
        Path out = parent.resolve("model.onnx");
        Files.writeString(out, "old");
        PetException e = assertThrows(PetException.class, () -> DefaultPetEngine.replaceAtomically(out, staged -> {
            Files.write(staged, new byte[1 << 20]);
            throw new java.io.IOException("disk full");
        }));
        assertEquals("cannot write " + out + ": disk full", e.getMessage());
        assertEquals("old", Files.readString(out));
        assertEquals(java.util.List.of("model.onnx"), siblingsOf(out, ""));
        Path dirOut = parent.resolve("ort");
        assertThrows(RuntimeException.class, () -> DefaultPetEngine.replaceAtomically(dirOut, staged -> {
            Files.createDirectories(staged).resolve("model.onnx");
            Files.write(staged.resolve("model.onnx"), new byte[1 << 20]);
            throw new IllegalStateException("serialiser failed");
        }));
        assertEquals(java.util.List.of("model.onnx"), siblingsOf(out, ""), "no ort/ and no staging directory");
    }

    private static java.util.List<String> siblingsOf(Path p, String prefix) throws java.io.IOException {
        try (var s = Files.list(p.toAbsolutePath().getParent())) {
            return s.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(prefix) || n.startsWith("."))
                    .sorted().toList();
        }
    }
}
