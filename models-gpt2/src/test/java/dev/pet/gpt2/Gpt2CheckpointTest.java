package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.io.CheckpointTensors;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hugging Face checkpoints written by the test load back, and bad checkpoints and inputs fail clearly. */
class Gpt2CheckpointTest {
    private static final long[][] IDS = {{464, 2068, 7586, 21831, 18045, 625}};
    private static Gpt2Weights weights;

    @BeforeAll
    static void setUp() {
        weights = TestModels.nonTrivial(TestModels.tiny(), 3);
    }

    @Test
    void savedCheckpointGivesTheSameLogitsAsInMemoryWeights(@TempDir Path dir) {
        Gpt2Checkpoint.save(weights, dir);
        assertTrue(Files.exists(dir.resolve("config.json")) && Files.exists(dir.resolve("model.safetensors")));
        Gpt2Weights loaded = Gpt2Checkpoint.load(dir, Map.of());
        assertEquals(weights.config(), loaded.config());
        assertArrayEquals(logits(weights), logits(loaded));
    }

    @Test
    void shardedCheckpointGivesTheSameLogitsAsTheSingleFile(@TempDir Path dir) {
        Gpt2Checkpoint.save(weights, dir, 200_000);
        assertTrue(Files.exists(dir.resolve(CheckpointTensors.INDEX_FILE)));
        assertTrue(!Files.exists(dir.resolve(Gpt2Checkpoint.WEIGHTS)), "sharded, not single-file");
        Gpt2Weights loaded = Gpt2Checkpoint.load(dir, Map.of());
        assertArrayEquals(logits(weights), logits(loaded));
    }

    @Test
    void shardedBfloat16CheckpointWithBadIndexNamesShardAndTensor(@TempDir Path dir) throws IOException {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        weights.tensors().forEach((k, v) -> sd.put(k, v.castTo(DataType.BFLOAT16)));
        Files.writeString(dir.resolve("config.json"), weights.config().toJson());
        CheckpointTensors.write(dir, sd, 100_000);
        Gpt2Weights loaded = Gpt2Checkpoint.load(dir, Map.of());
        assertArrayEquals(sd.get("transformer.h.1.mlp.c_fc.weight").toFloatArray(),
                loaded.get("transformer.h.1.mlp.c_fc.weight").toFloatArray());
        assertEquals(DataType.FLOAT, loaded.get("transformer.h.1.mlp.c_fc.weight").dataType());
        Path index = dir.resolve(CheckpointTensors.INDEX_FILE);
        String text = Files.readString(index);
        Files.writeString(index, text.replace("\"transformer.ln_f.bias\" : \"", "\"transformer.ln_f.bias\" : \"x-"));
        var e = assertThrows(dev.pet.onnx.OnnxException.class, () -> Gpt2Checkpoint.load(dir, Map.of()));
        assertTrue(e.getMessage().contains("missing shard") && e.getMessage().contains("transformer.ln_f.bias"),
                e.getMessage());
    }

    @Test
    void loadsHalfPrecisionBareNamesTiedHeadAndIgnoresMaskBuffers(@TempDir Path dir) throws IOException {
        for (DataType half : new DataType[] {DataType.FLOAT16, DataType.BFLOAT16}) {
            Map<String, Tensor> sd = new LinkedHashMap<>();
            weights.tensors().forEach((k, v) -> sd.put(k.substring("transformer.".length()), v.castTo(half)));
            sd.put("lm_head.weight", sd.get("wte.weight"));
            sd.put("h.0.attn.bias", Tensor.zeros(DataType.FLOAT, 1, 1, 128, 128));
            sd.put("h.0.attn.masked_bias", Tensor.scalar(-1e4f));
            Files.writeString(dir.resolve("config.json"), weights.config().toJson());
            SafeTensors.write(dir.resolve("model.safetensors"), sd, Map.of());
            Gpt2Weights loaded = Gpt2Checkpoint.load(dir, Map.of());
            for (String name : Gpt2Weights.names(weights.config())) {
                assertEquals(DataType.FLOAT, loaded.get(name).dataType());
                assertArrayEquals(weights.get(name).castTo(half).toFloatArray(), loaded.get(name).toFloatArray(),
                        name);
            }
        }
    }

    @Test
    void mindFormersNamesBindToTheSameConfig(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"hidden_size\": 64, "
                + "\"num_layers\": 2, \"num_heads\": 4, \"seq_length\": 128}");
        assertEquals(TestModels.tiny(), Gpt2Config.read(dir.resolve("config.json")));
    }

    @Test
    void missingConfigKeyNamesKeyAndExpectation(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"n_embd\": 64, \"n_layer\": 2, "
                + "\"n_positions\": 128}");
        PetException e = assertThrows(PetException.class, () -> Gpt2Checkpoint.load(dir, Map.of()));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("'n_head'")
                && e.getMessage().contains("expected a positive integer") && e.getMessage().contains("found nothing"),
                e.getMessage());
    }

    @Test
    void invalidConfigValuesNameKeyExpectedAndFound(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"n_embd\": \"wide\", \"n_layer\": 2,"
                + " \"n_head\": 4, \"n_positions\": 128}");
        PetException e = assertThrows(PetException.class, () -> Gpt2Config.read(dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("'n_embd'") && e.getMessage().contains("\"wide\""), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"n_embd\": 64, \"n_layer\": 2,"
                + " \"n_head\": 5, \"n_positions\": 128}");
        e = assertThrows(PetException.class, () -> Gpt2Config.read(dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("divisible"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"n_embd\": 64, \"hidden_size\": 32,"
                + " \"n_layer\": 2, \"n_head\": 4, \"n_positions\": 128}");
        e = assertThrows(PetException.class, () -> Gpt2Config.read(dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("disagree"), e.getMessage());
    }

    @Test
    void shapeMismatchNamesTensorExpectedAndFound(@TempDir Path dir) {
        Gpt2Checkpoint.save(weights, dir);
        PetException e = assertThrows(PetException.class,
                () -> Gpt2Checkpoint.load(dir, Map.of("n_inner", 128)));
        assertTrue(e.getMessage().contains("'transformer.h.0.mlp.c_fc.weight'")
                && e.getMessage().contains("[64, 256]") && e.getMessage().contains("expected [64, 128]"),
                e.getMessage());
    }

    @Test
    void missingTensorIsNamed(@TempDir Path dir) throws IOException {
        Map<String, Tensor> sd = new LinkedHashMap<>(weights.tensors());
        sd.remove("transformer.h.1.ln_2.bias");
        Files.writeString(dir.resolve("config.json"), weights.config().toJson());
        SafeTensors.write(dir.resolve("model.safetensors"), sd, Map.of());
        PetException e = assertThrows(PetException.class, () -> Gpt2Checkpoint.load(dir, Map.of()));
        assertTrue(e.getMessage().contains("missing tensor 'transformer.h.1.ln_2.bias'")
                && e.getMessage().contains("[64]"), e.getMessage());
    }

    @Test
    void untiedHeadAndUnexpectedTensorsAreRejected() {
        Map<String, Tensor> sd = new LinkedHashMap<>(weights.tensors());
        sd.put("lm_head.weight", Tensor.zeros(DataType.FLOAT, 50257, 64));
        PetException e = assertThrows(PetException.class, () -> Gpt2Weights.of(weights.config(), sd, "sd"));
        assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
        sd.remove("lm_head.weight");
        sd.put("transformer.h.2.ln_1.weight", Tensor.zeros(DataType.FLOAT, 64));
        e = assertThrows(PetException.class, () -> Gpt2Weights.of(weights.config(), sd, "sd"));
        assertTrue(e.getMessage().contains("transformer.h.2.ln_1.weight") && e.getMessage().contains("n_layer=2"),
                e.getMessage());
    }

    @Test
    void truncatedSafetensorsIsRejected(@TempDir Path dir) throws IOException {
        Gpt2Checkpoint.save(weights, dir);
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length - 100));
        var e = assertThrows(dev.pet.onnx.OnnxException.class, () -> Gpt2Checkpoint.load(dir, Map.of()));
        assertTrue(e.getMessage().contains("data_offsets"), e.getMessage());
        assertTrue(e.getMessage().contains(f.toString()), "names the file: " + e.getMessage());
    }

    @Test
    void runRejectsLongSequencesAndIdsOutsideTheVocabulary() {
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(weights, CausalLmGraphOptions.training()))) {
            PetException e = assertThrows(PetException.class, () -> s.run(new long[][] {new long[129]}, null));
            assertTrue(e.getMessage().contains("129") && e.getMessage().contains("n_positions 128"), e.getMessage());
            e = assertThrows(PetException.class, () -> s.run(new long[][] {{1, 2, 50257}}, null));
            assertTrue(e.getMessage().contains("input_ids[0][2] = 50257")
                    && e.getMessage().contains("[0, 50257)"), e.getMessage());
            e = assertThrows(PetException.class, () -> s.run(new long[][] {{1, -1}}, null));
            assertTrue(e.getMessage().contains("= -1"), e.getMessage());
            e = assertThrows(PetException.class, () -> s.run(new long[][] {{1, 2}}, new long[][] {{1, 1, 1}}));
            assertTrue(e.getMessage().contains("attention_mask"), e.getMessage());
        }
    }

    @Test
    void providerLoadsPresetsAndDirectories(@TempDir Path dir) {
        Gpt2Provider p = new Gpt2Provider();
        var tiny = p.load(new ModelRequest("gpt2-tiny", Map.of(), 5));
        assertEquals(50257, tiny.vocabSize());
        assertEquals(128, tiny.maxPositions());
        assertEquals(64, tiny.config().get("n_embd"));
        var shorter = Gpt2Provider.loadWeights(new ModelRequest("gpt2-tiny", Map.of("seq_length", 64), 5));
        assertEquals(64, shorter.config().nPositions());
        Gpt2Checkpoint.save(weights, dir);
        var fromDir = p.load(ModelRequest.of(dir.toString()));
        assertEquals(2, fromDir.anatomy().layers().size());
        assertArrayEquals(weights.get("transformer.wte.weight").toFloatArray(),
                fromDir.model().graph().initializer("transformer.wte.weight").toFloatArray());
        PetException e = assertThrows(PetException.class,
                () -> p.load(new ModelRequest("gpt2-tiny", Map.of("n_embed", 3), 0)));
        assertTrue(e.getMessage().contains("n_embed"), e.getMessage());
        e = assertThrows(PetException.class, () -> p.load(ModelRequest.of(dir.resolve("nothing").toString())));
        assertTrue(e.getMessage().contains("neither a preset"), e.getMessage());
    }

    @Test
    void randomInitFollowsHuggingFaceScheme() {
        Gpt2Config c = Gpt2Config.of(1000, 64, 64, 4, 4);
        Gpt2Weights w = Gpt2Weights.random(c, 11);
        assertArrayEquals(w.get("transformer.h.0.attn.c_attn.weight").toFloatArray(),
                Gpt2Weights.random(c, 11).get("transformer.h.0.attn.c_attn.weight").toFloatArray());
        assertEquals(0.02, std(w.get("transformer.wte.weight")), 0.001);
        assertEquals(0.02, std(w.get("transformer.h.1.mlp.c_fc.weight")), 0.001);
        assertEquals(0.02 / Math.sqrt(8), std(w.get("transformer.h.1.mlp.c_proj.weight")), 0.0005);
        assertEquals(0.02 / Math.sqrt(8), std(w.get("transformer.h.1.attn.c_proj.weight")), 0.0005);
        for (float v : w.get("transformer.h.0.ln_1.weight").toFloatArray()) {
            assertEquals(1f, v);
        }
        for (float v : w.get("transformer.h.0.attn.c_attn.bias").toFloatArray()) {
            assertEquals(0f, v);
        }
    }

    private static double std(Tensor t) {
        double s = 0;
        double[] d = t.toDoubleArray();
        for (double v : d) {
            s += v * v;
        }
        return Math.sqrt(s / d.length);
    }

    private static float[] logits(Gpt2Weights w) {
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(w, CausalLmGraphOptions.training()));
                Gpt2Output o = s.run(IDS, null)) {
            return o.logits().clone();
        }
    }

    @Test
    void absurdConfigSizesAreRefusedBeforeAnythingIsBuilt(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 50257, \"n_embd\": 1000000000, \"n_layer\": 2,"
                + " \"n_head\": 4, \"n_positions\": 128}");
        PetException e = assertThrows(PetException.class, () -> Gpt2Config.read(dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("n_embd 1000000000 is too large: the MLP width n_inner = 4·n_embd = "
                + "4000000000"), e.getMessage());

        // A checkpoint whose config claims a billion layers: refused at once, never listing a billion layers' names.
        Gpt2Checkpoint.save(weights, dir);
        String json = Files.readString(dir.resolve("config.json")).replaceFirst("\"n_layer\"\\s*:\\s*2",
                "\"n_layer\": 1000000000");
        Files.writeString(dir.resolve("config.json"), json);
        long t0 = System.nanoTime();
        e = assertThrows(PetException.class, () -> Gpt2Checkpoint.load(dir, Map.of()));
        assertTrue(e.getMessage().contains("the config says n_layer 1000000000, which needs 12000000000 block tensors"),
                e.getMessage());
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "refused without building the expected names");
    }
}
