package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    private static Map<String, Tensor> everyType() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("f32", Tensor.ofFloats(new float[] {1.5f, -2f, 3f, 4f, 5f, 6f}, 2, 3));
        m.put("f64", Tensor.ofDoubles(new double[] {Math.PI, -1}, 2));
        m.put("f16", Tensor.fromDoubles(DataType.FLOAT16, new double[] {0.5, -3}, 2));
        m.put("bf16", Tensor.fromDoubles(DataType.BFLOAT16, new double[] {2, 0.25, 8}, 3, 1));
        m.put("i64", Tensor.ofLongs(new long[] {Long.MIN_VALUE, 7}, 2));
        m.put("i32", Tensor.ofInts(new int[] {-5}, 1));
        m.put("i16", Tensor.fromDoubles(DataType.INT16, new double[] {1, -2}, 2));
        m.put("i8", Tensor.fromDoubles(DataType.INT8, new double[] {-3, 4}, 2));
        m.put("u8", Tensor.fromDoubles(DataType.UINT8, new double[] {200, 4}, 2));
        m.put("bool", Tensor.ofBools(new boolean[] {true, false, true}, 3));
        m.put("scalar", Tensor.scalar(9f));
        m.put("empty", Tensor.zeros(DataType.FLOAT, 0, 4));
        return m;
    }

    @Test
    void roundTripsEveryDtypeWithMetadata() {
        Path f = dir.resolve("all.safetensors");
        SafeTensors.write(f, everyType(), Map.of("format", "pt"));
        SafeTensors.Contents c = SafeTensors.readWithMetadata(f);
        assertEquals(Map.of("format", "pt"), c.metadata());
        assertEquals(List.copyOf(everyType().keySet()), List.copyOf(c.tensors().keySet()), "file order kept");
        everyType().forEach((name, t) -> {
            Tensor r = c.tensors().get(name);
            assertEquals(t.dataType(), r.dataType(), name);
            assertArrayEquals(t.shape(), r.shape(), name);
            assertEquals(t.buffer(), r.buffer(), name);
        });
    }

    @Test
    void readsAFileAssembledByHandPerTheSpecification() throws Exception {
        String header = "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                + "\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}";
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putDouble(2.5).putInt(42);
        Path f = write(header, data.array());
        Map<String, Tensor> t = SafeTensors.read(f);
        assertEquals(2.5, t.get("a").toDoubleArray()[0]);
        assertEquals(42, t.get("b").toLongArray()[0]);
        assertEquals(0, t.get("a").rank());
    }

    @Test
    void readsFilesAndTensorsAboveTwoGibibytes() throws Exception {
        // A sparse file: 1.5 GB, then a tensor of 2 GiB + 8 bytes, then a float32 tail past the 3.5 GB mark. No
        // bytes are written but the tail's, so the test takes no disk and no time.
        long a = 1_500_000_000L;
        long big = (1L << 31) + 8;
        String header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[" + a + "],\"data_offsets\":[0," + a + "]},"
                + "\"big\":{\"dtype\":\"U8\",\"shape\":[" + big + "],\"data_offsets\":[" + a + "," + (a + big)
                + "]},\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + (a + big) + ","
                + (a + big + 8) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path f = dir.resolve("huge.safetensors");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(f,
                java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, h.length));
            ch.write(ByteBuffer.wrap(h));
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, 1.5f).putFloat(4, -7f),
                    8 + h.length + a + big);
        }
        Map<String, Tensor> t = SafeTensors.read(f);
        assertArrayEquals(new float[] {1.5f, -7f}, t.get("tail").toFloatArray());
        assertEquals(a, t.get("a").byteSize());
        assertEquals(0, t.get("a").buffer().get((int) (a - 1)));
        assertEquals(big, t.get("big").byteSize());
        OnnxException e = assertThrows(OnnxException.class, () -> t.get("big").buffer());
        assertTrue(e.getMessage().contains("streamed"), e.getMessage());
    }

    @Test
    void rejectsHostileHeadersWithMessagesNamingTheFile() throws Exception {
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRejected(raw(Long.MAX_VALUE, ok.getBytes(StandardCharsets.UTF_8), 8), "header length");
        assertRejected(raw(-3, ok.getBytes(StandardCharsets.UTF_8), 8), "header length");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", new byte[9]),
                "data_offsets");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", new byte[8]),
                "data_offsets");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]), "overlap");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]),
                "belong to no tensor");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[8]),
                "cover");
        assertRejected(write("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]),
                "dtype");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]),
                "dimension");
        assertRejected(write("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,4]}}",
                new byte[4]), "too large");
        assertRejected(write("{\"a\":1,\"a\":2}", new byte[0]), "JSON");
        assertRejected(write("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]", new byte[0]), "JSON");
        assertRejected(write("{\"a\":", new byte[0]), "JSON");
        assertRejected(write("{\"__metadata__\":{\"k\":1}}", new byte[0]), "__metadata__");
    }

    @Test
    void fuzzedFilesFailOnlyWithCleanErrors() throws Exception {
        Path good = dir.resolve("good.safetensors");
        SafeTensors.write(good, everyType(), Map.of("format", "pt"));
        byte[] bytes = Files.readAllBytes(good);
        Random r = new Random(17);
        int rejected = 0;
        for (int i = 0; i < 400; i++) {
            byte[] b = bytes.clone();
            if (i % 2 == 0) {
                b = java.util.Arrays.copyOf(b, r.nextInt(bytes.length));
            } else {
                for (int k = 0; k <= r.nextInt(4); k++) {
                    int pos = r.nextInt(Math.min(b.length, 8 + 700));
                    b[pos] ^= (byte) (1 << r.nextInt(8));
                }
            }
            Path f = dir.resolve("fuzz.safetensors");
            Files.write(f, b);
            try {
                SafeTensors.read(f);
            } catch (OnnxException e) {
                rejected++;
                assertTrue(e.getMessage().contains(f.toString()), "error names the file: " + e.getMessage());
            } catch (RuntimeException e) {
                fail("case " + i + " escaped as " + e, e);
            }
        }
        assertTrue(rejected > 200, "most corruptions are detected: " + rejected);
    }

    private void assertRejected(Path f, String fragment) {
        OnnxException e = assertThrows(OnnxException.class, () -> SafeTensors.read(f));
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains(f.toString()),
                "expected '" + fragment + "': " + e.getMessage());
    }

    private int counter;

    private Path write(String header, byte[] data) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return raw(h.length, h, 0, data);
    }

    private Path raw(long declared, byte[] header, int dataLen) throws Exception {
        return raw(declared, header, 0, new byte[dataLen]);
    }

    private Path raw(long declared, byte[] header, int unused, byte[] data) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(declared).array());
        out.write(header);
        out.write(data);
        Path f = dir.resolve("case" + (counter++) + ".safetensors");
        Files.write(f, out.toByteArray());
        return f;
    }
}
