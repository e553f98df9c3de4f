package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTensorsTest {
    @TempDir
    Path tmp;

    private static Map<String, Tensor> weights() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("embed.weight", Tensor.fromDoubles(DataType.BFLOAT16, new double[] {1, 2, 3, 4, 5, 6}, 3, 2));
        m.put("layers.0.w", Tensor.ofFloats(new float[] {0.5f, -1f, 2f, 4f}, 2, 2));
        m.put("layers.0.b", Tensor.fromDoubles(DataType.FLOAT16, new double[] {0.25, -8}, 2));
        m.put("layers.1.w", Tensor.ofFloats(new float[] {3f, 1f, -2f, 7f}, 2, 2));
        m.put("norm.weight", Tensor.ofFloats(new float[] {1f, 1f}, 2));
        return m;
    }

    private Path sharded(String name) {
        Path dir = tmp.resolve(name);
        CheckpointTensors.write(dir, weights(), 16);
        return dir;
    }

    @Test
    void readsShardedCheckpointsAsOneMapInIndexOrder() throws Exception {
        Path dir = sharded("model");
        assertTrue(Files.isRegularFile(dir.resolve(CheckpointTensors.INDEX_FILE)));
        assertFalse(Files.exists(dir.resolve(CheckpointTensors.SINGLE_FILE)));
        List<Path> shards;
        try (var s = Files.list(dir)) {
            shards = s.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
                    .sorted().toList();
        }
        assertTrue(shards.size() >= 3, "16-byte shards split the tensors: " + shards);
        CheckpointTensors c = CheckpointTensors.read(dir);
        assertEquals(List.copyOf(weights().keySet()), List.copyOf(c.tensors().keySet()));
        weights().forEach((name, t) -> {
            Tensor r = c.tensors().get(name);
            assertEquals(t.dataType(), r.dataType(), name);
            assertEquals(t.buffer(), r.buffer(), name);
        });
        assertEquals(shards.get(0), c.source("embed.weight"));
        assertEquals(shards.get(shards.size() - 1), c.source("norm.weight"));
        assertEquals(List.of(1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
                java.util.Arrays.stream(c.tensors().get("embed.weight").castTo(DataType.FLOAT).toDoubleArray())
                        .boxed().toList(), "bf16 widened to float32");
        OnnxException e = assertThrows(OnnxException.class, () -> c.source("nope"));
        assertTrue(e.getMessage().contains("'nope'"), e.getMessage());
    }

    @Test
    void readsTheSingleFileLayoutAndReplacesTheOtherLayoutWhenWriting() {
        Path dir = sharded("model");
        CheckpointTensors.write(dir, weights(), 1 << 20);
        assertTrue(Files.isRegularFile(dir.resolve(CheckpointTensors.SINGLE_FILE)));
        assertFalse(Files.exists(dir.resolve(CheckpointTensors.INDEX_FILE)), "stale index removed");
        CheckpointTensors c = CheckpointTensors.read(dir);
        assertEquals(weights().keySet(), c.tensors().keySet());
        assertEquals(dir.resolve(CheckpointTensors.SINGLE_FILE), c.source("layers.1.w"));
        CheckpointTensors.write(dir, weights(), 16);
        assertFalse(Files.exists(dir.resolve(CheckpointTensors.SINGLE_FILE)), "stale single file removed");
        assertTrue(CheckpointTensors.isPresent(dir));
    }

    @Test
    void aDirectoryWithoutWeightsIsNamed() {
        OnnxException e = assertThrows(OnnxException.class, () -> CheckpointTensors.read(tmp));
        assertTrue(e.getMessage().contains(tmp.toString()) && e.getMessage().contains(CheckpointTensors.INDEX_FILE),
                e.getMessage());
        assertFalse(CheckpointTensors.isPresent(tmp));
    }

    @Test
    void rejectsAnIndexNamingAMissingShard() throws Exception {
        Path dir = sharded("missing");
        Files.delete(dir.resolve(shardOf(dir, "layers.1.w")));
        assertRejected(dir, "missing shard", "layers.1.w");
    }

    @Test
    void rejectsATensorStoredInTwoShards() throws Exception {
        Path dir = sharded("twice");
        String s1 = shardOf(dir, "embed.weight");
        // Rewrite the shard holding layers.0.b so that it also holds embed.weight.
        Path other = dir.resolve(shardOf(dir, "layers.0.b"));
        Map<String, Tensor> contents = new LinkedHashMap<>(SafeTensors.read(other));
        contents.put("embed.weight", weights().get("embed.weight"));
        Map<String, Tensor> copy = new LinkedHashMap<>();
        contents.forEach((k, v) -> copy.put(k, v.copy()));
        SafeTensors.write(other, copy, Map.of());
        OnnxException e = assertRejected(dir, "also stored here", "embed.weight");
        assertTrue(e.getMessage().contains(s1), e.getMessage());
    }

    @Test
    void rejectsShardsAndIndexesThatDisagree() throws Exception {
        Path dir = sharded("disagree");
        String index = Files.readString(dir.resolve(CheckpointTensors.INDEX_FILE));
        // The index forgets a tensor its shard holds.
        writeIndex(dir, index.replace("\"norm.weight\"", "\"norm.gone\""));
        assertRejected(dir, "is not listed", "'norm.weight'");
        // The index names a tensor its shard lacks.
        writeIndex(dir, index.replaceFirst("\\{", "{\"extra\":1,").replace("\"weight_map\" : {",
                "\"weight_map\" : {\"ghost\" : \"" + shardOf(dir, "layers.0.w") + "\","));
        assertRejected(dir, "no tensor 'ghost'", "this shard");
    }

    @Test
    void rejectsAShardWithOffsetsPastTheEndNamingFileAndTensor() throws Exception {
        Path dir = sharded("offsets");
        Path shard = dir.resolve(shardOf(dir, "layers.0.w"));
        byte[] b = Files.readAllBytes(shard);
        Files.write(shard, java.util.Arrays.copyOf(b, b.length - 4));
        assertRejected(dir, shard.toString(), "layers.0.w");
    }

    @Test
    void rejectsAnIndexPointingOutsideTheModelDirectory() throws Exception {
        Path dir = sharded("escape");
        String index = Files.readString(dir.resolve(CheckpointTensors.INDEX_FILE));
        String shard = shardOf(dir, "norm.weight");
        Path outside = tmp.resolve("outside.safetensors");
        Files.copy(dir.resolve(shard), outside);
        writeIndex(dir, index.replace("\"norm.weight\" : \"" + shard + "\"",
                "\"norm.weight\" : \"../outside.safetensors\""));
        assertRejected(dir, "outside the model directory", "norm.weight");
        writeIndex(dir, index.replace("\"norm.weight\" : \"" + shard + "\"",
                "\"norm.weight\" : \"" + outside.toAbsolutePath() + "\""));
        assertRejected(dir, "outside the model directory", "norm.weight");
        Files.createSymbolicLink(dir.resolve("link.safetensors"), outside);
        writeIndex(dir, index.replace("\"norm.weight\" : \"" + shard + "\"",
                "\"norm.weight\" : \"link.safetensors\""));
        assertRejected(dir, "links outside the model directory", "norm.weight");
    }

    @Test
    void rejectsMalformedIndexes() throws Exception {
        Path dir = sharded("malformed");
        String[] bad = {"", "[]", "{", "{\"metadata\":{}}", "{\"weight_map\":[]}", "{\"weight_map\":{}}",
            "{\"weight_map\":{\"a\":1}}", "{\"weight_map\":{\"a\":\"\"}}", "{\"weight_map\":{\"\":\"x\"}}",
            "{\"weight_map\":{\"a\":\"x\",\"a\":\"y\"}}", "{\"metadata\":3,\"weight_map\":{\"a\":\"x\"}}",
            "{\"weight_map\":{\"a\":\"bad\\u0000name\"}}"};
        for (String s : bad) {
            writeIndex(dir, s);
            OnnxException e = assertThrows(OnnxException.class, () -> CheckpointTensors.read(dir), s);
            assertTrue(e.getMessage().contains(CheckpointTensors.INDEX_FILE), s + ": " + e.getMessage());
        }
    }

    @Test
    void fuzzedIndexesFailOnlyWithCleanErrors() throws Exception {
        Path dir = sharded("fuzz");
        byte[] good = Files.readAllBytes(dir.resolve(CheckpointTensors.INDEX_FILE));
        Random r = new Random(23);
        int rejected = 0;
        for (int i = 0; i < 300; i++) {
            byte[] b = good.clone();
            if (i % 3 == 0) {
                b = java.util.Arrays.copyOf(b, r.nextInt(good.length));
            } else {
                for (int k = 0; k <= r.nextInt(3); k++) {
                    b[r.nextInt(b.length)] = (byte) (i % 3 == 1 ? r.nextInt(128) : b[r.nextInt(b.length)]);
                }
            }
            Files.write(dir.resolve(CheckpointTensors.INDEX_FILE), b);
            try {
                CheckpointTensors.read(dir);
            } catch (OnnxException e) {
                rejected++;
                assertTrue(e.getMessage().contains(dir.toString()), "error names a file: " + e.getMessage());
            } catch (RuntimeException e) {
                fail("case " + i + " escaped as " + e, e);
            }
        }
        assertTrue(rejected > 150, "most corruptions are detected: " + rejected);
    }

    private static String shardOf(Path dir, String tensor) {
        return CheckpointTensors.parseIndex(dir.resolve(CheckpointTensors.INDEX_FILE)).get(tensor);
    }

    private static void writeIndex(Path dir, String text) throws Exception {
        Files.writeString(dir.resolve(CheckpointTensors.INDEX_FILE), text, StandardCharsets.UTF_8);
    }

    private static OnnxException assertRejected(Path dir, String fragment, String names) {
        OnnxException e = assertThrows(OnnxException.class, () -> CheckpointTensors.read(dir));
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains(names),
                "expected '" + fragment + "' and '" + names + "': " + e.getMessage());
        return e;
    }
}
