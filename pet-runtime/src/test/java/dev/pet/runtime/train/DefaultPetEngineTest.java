package dev.pet.runtime.train;

import dev.pet.runtime.plugin.PluginKind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.engine.CompiledGraph;
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
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** generate, export and inspect on a run's final adapter. */
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
                .trainDataset(corpus).seqLength(16).batchSize(2).maxSteps(8).outputDir(dir.resolve("run")).seed(3)
                .build();
        t.finetune();
        config = t.config();
        env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                DefaultPetEngineTest.class.getClassLoader(), null), new TrainingListener() { },
                TokenCache.defaultCache(), new PrintStream(System.out));
    }

    @Test
    void generatesDeterministicallyAfterThePrompt() {
        String a = engine.generate(new GenerateRequest(config, null, "Sound the", 8, 0, 0, 1), env);
        String b = engine.generate(new GenerateRequest(config, null, "Sound the", 8, 0, 0, 1), env);
        assertEquals(a, b, "greedy decoding is deterministic");
        assertTrue(a.startsWith("Sound the") && a.length() > "Sound the".length(), a);
        String sampled = engine.generate(new GenerateRequest(config, null, "Sound the", 8, 1.0, 40, 7), env);
        assertEquals(sampled, engine.generate(new GenerateRequest(config, null, "Sound the", 8, 1.0, 40, 7), env),
                "seeded sampling repeats");
    }

    @Test
    void exportsAMergedModelThatComputesWhatTheAdapterDoes() throws Exception {
        Path merged = dir.resolve("merged.onnx");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.MERGED_ONNX, merged, false), env);
        RunSetup s = new RunSetup(config, env);
        var pet = s.withAdapter(config.outputDir().resolve("adapter"));
        long[] ids = {7, 8, 9, 10};
        long[] mask = new long[ids.length];
        Arrays.fill(mask, 1);
        Map<String, Tensor> feeds = Map.of("input_ids", Tensor.ofLongs(ids, 1, 4), "attention_mask",
                Tensor.ofLongs(mask, 1, 4));
        try (OrtEngine e = OrtEngine.cpu(); CompiledGraph m = e.compile(OnnxFiles.read(merged));
                CompiledGraph p = e.compile(pet.inferenceModel())) {
            float[] a = m.run(feeds).get("logits").toFloatArray();
            float[] b = p.run(feeds).get("logits").toFloatArray();
            double d = 0;
            for (int i = 0; i < a.length; i++) {
                d = Math.max(d, Math.abs(a[i] - b[i]));
            }
            assertTrue(d <= 1e-5, "merged vs adapter: " + d);
        }
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
        RunSetup s = new RunSetup(config, env);
        var trained = s.withAdapter(config.outputDir().resolve("adapter"));
        long[] ids = {7, 8, 9, 10};
        long[] mask = new long[ids.length];
        Arrays.fill(mask, 1);
        Map<String, Tensor> feeds = Map.of("input_ids", Tensor.ofLongs(ids, 1, 4), "attention_mask",
                Tensor.ofLongs(mask, 1, 4));
        float[] expectTrained;
        float[] expectBase;
        try (OrtEngine e = OrtEngine.cpu(); CompiledGraph p = e.compile(trained.inferenceModel());
                CompiledGraph base = e.compile(s.base.model())) {
            expectTrained = p.run(feeds).get("logits").toFloatArray();
            expectBase = base.run(feeds).get("logits").toFloatArray();
        }
        var env0 = ai.onnxruntime.OrtEnvironment.getEnvironment();
        try (var session = env0.createSession(out.resolve(DefaultPetEngine.ORT_MODEL).toString(),
                new ai.onnxruntime.OrtSession.SessionOptions());
                var lora = ai.onnxruntime.OrtLoraAdapter.create(out.resolve(DefaultPetEngine.ORT_ADAPTER).toString());
                var opts = new ai.onnxruntime.OrtSession.RunOptions();
                var idsT = ai.onnxruntime.OnnxTensor.createTensor(env0, java.nio.LongBuffer.wrap(ids), new long[] {1, 4});
                var maskT = ai.onnxruntime.OnnxTensor.createTensor(env0, java.nio.LongBuffer.wrap(mask),
                        new long[] {1, 4})) {
            Map<String, ai.onnxruntime.OnnxTensor> in = Map.of("input_ids", idsT, "attention_mask", maskT);
            try (var r = session.run(in, java.util.Set.of("logits"))) {
                assertClose(expectBase, ((ai.onnxruntime.OnnxTensor) r.get(0)).getFloatBuffer(), "no adapter: base");
            }
            opts.addActiveLoraAdapter(lora);
            try (var r = session.run(in, java.util.Set.of("logits"), opts)) {
                assertClose(expectTrained, ((ai.onnxruntime.OnnxTensor) r.get(0)).getFloatBuffer(), "adapter active");
            }
        }
    }

    private static void assertClose(float[] expected, java.nio.FloatBuffer got, String what) {
        double d = 0;
        for (int i = 0; i < expected.length; i++) {
            d = Math.max(d, Math.abs(expected[i] - got.get(i)));
        }
        assertTrue(d <= 1e-5, what + ": max diff " + d);
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
