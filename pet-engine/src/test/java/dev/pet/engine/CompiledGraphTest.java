package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.BufferData;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Frozen weights supplied outside the protobuf, tensor wrapping without copies, and ORT's initializer rules. */
class CompiledGraphTest {
    private static final int ROWS = 5;
    private static final int IN = 64;
    private static final int OUT = 48;
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1));
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static float[] random(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /** y = x @ W + bias, W frozen (12 kB), bias small (192 B). */
    private static Model linear(Tensor w, Tensor bias) {
        Graph g = new Graph("linear");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "rows", (long) IN));
        b.output(b.add(b.matMul(x, b.initializer("W", w)), b.initializer("bias", bias)), "y");
        return new Model(g, GraphBuilder.DEFAULT_OPSET);
    }

    private static float[] naive(float[] x, float[] w, float[] bias) {
        float[] y = new float[ROWS * OUT];
        for (int r = 0; r < ROWS; r++) {
            for (int o = 0; o < OUT; o++) {
                double s = bias[o];
                for (int i = 0; i < IN; i++) {
                    s += (double) x[r * IN + i] * w[i * OUT + o];
                }
                y[r * OUT + o] = (float) s;
            }
        }
        return y;
    }

    @Test
    void externalInitializersGiveTheSameOutputsAsEmbeddedOnes() {
        Random r = new Random(3);
        float[] w = random(r, IN * OUT);
        float[] bias = random(r, OUT);
        float[] x = random(r, ROWS * IN);
        Model model = linear(Tensor.ofFloats(w, IN, OUT), Tensor.ofFloats(bias, OUT));
        Map<String, Tensor> feeds = Map.of("x", Tensor.ofFloats(x, ROWS, IN));
        float[] external;
        float[] embedded;
        try (CompiledGraph g = engine.compile(model)) {
            assertEquals(Set.of("W"), g.externalInitializers());
            external = g.run(feeds).get("y").toFloatArray();
            // The same session serves every call.
            assertArrayEquals(external, g.run(feeds).get("y").toFloatArray(), 0f);
        }
        try (OrtEngine embedding = new OrtEngine(engine.options().withExternalThresholdBytes(Long.MAX_VALUE));
                CompiledGraph g = embedding.compile(model)) {
            assertEquals(Set.of(), g.externalInitializers());
            assertTrue(g.serializedBytes() > 4L * IN * OUT);
            embedded = g.run(feeds).get("y").toFloatArray();
        }
        assertArrayEquals(embedded, external, 0f);
        // Float32 dot products of length 64 against a float64 sum: relative error well under 1e-5.
        assertArrayEquals(naive(x, w, bias), external, 1e-4f);
    }

    @Test
    void noInitializerAtOrAboveTheThresholdIsSerialised() throws Exception {
        Random r = new Random(5);
        Model model = linear(Tensor.ofFloats(random(r, IN * OUT), IN, OUT), Tensor.ofFloats(random(r, OUT), OUT));
        long threshold = 1024;
        SerializedModel s = SerializedModel.of(model, threshold);
        ModelProto proto = ModelProto.parseFrom(s.bytes());
        for (TensorProto t : proto.getGraph().getInitializerList()) {
            assertTrue(t.getRawData().size() < threshold, t.getName() + " carries " + t.getRawData().size()
                    + " bytes inline");
        }
        TensorProto w = proto.getGraph().getInitializerList().stream().filter(t -> t.getName().equals("W"))
                .findFirst().orElseThrow();
        assertEquals(TensorProto.DataLocation.EXTERNAL, w.getDataLocation());
        assertEquals(java.util.List.of((long) IN, (long) OUT), w.getDimsList());
        assertTrue(w.getRawData().isEmpty());
        assertEquals(Set.of("W"), s.external().keySet());
        // The whole protobuf is smaller than the weight it refers to: graph, bias and headers only.
        assertTrue(s.bytes().length < 4L * IN * OUT / 4, "serialised size " + s.bytes().length);
        assertTrue(s.bytes().length > 4L * OUT, "bias is inline");
    }

    @Test
    void aWeightInAMemoryMappedFileIsUsedWithoutACopy(@TempDir Path dir) throws Exception {
        Random r = new Random(7);
        float[] w = random(r, IN * OUT);
        float[] bias = random(r, OUT);
        float[] x = random(r, ROWS * IN);
        // A checkpoint-like file: a 24-byte header, then the weight.
        Path file = dir.resolve("weights.bin");
        ByteBuffer bytes = ByteBuffer.allocate(24 + 4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.position(24);
        bytes.asFloatBuffer().put(w);
        bytes.position(0);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (bytes.hasRemaining()) {
                ch.write(bytes);
            }
        }
        Tensor mapped = new Tensor(DataType.FLOAT, new long[] {IN, OUT}, new FileData(file, 24, 4L * w.length));
        assertTrue(mapped.buffer().isDirect());
        try (OnnxTensor wrapped = OrtTensors.wrap(engine.environment(), mapped)) {
            assertFalse(wrapped.ownsBuffer(), "ORT must not copy a mapped buffer");
            assertTrue(wrapped.getBufferRef().orElseThrow().isDirect());
        }
        // ORT reads the weight from the file itself: the protobuf names the file, offset and length.
        SerializedModel s = SerializedModel.of(linear(mapped, Tensor.ofFloats(bias, OUT)), 1024);
        assertEquals(Set.of("W"), s.fromFiles());
        assertEquals(Map.of(), s.inMemory());
        assertEquals(dir.toAbsolutePath().normalize(), s.dataFolder());
        TensorProto wp = ModelProto.parseFrom(s.bytes()).getGraph().getInitializerList().stream()
                .filter(t -> t.getName().equals("W")).findFirst().orElseThrow();
        Map<String, String> location = new java.util.HashMap<>();
        wp.getExternalDataList().forEach(e -> location.put(e.getKey(), e.getValue()));
        assertEquals(Map.of("location", "weights.bin", "offset", "24", "length", Long.toString(4L * w.length)),
                location);
        try (CompiledGraph g = engine.compile(linear(mapped, Tensor.ofFloats(bias, OUT)))) {
            assertEquals(Set.of("W"), g.externalInitializers());
            float[] y = g.run(Map.of("x", Tensor.ofFloats(x, ROWS, IN))).get("y").toFloatArray();
            assertArrayEquals(naive(x, w, bias), y, 1e-4f);
        }
        assertTrue(Files.size(file) > 0);
    }

    @Test
    void fileRegionsOutsideTheMainFolderAreHandedOverFromMemory(@TempDir Path dir) throws Exception {
        Random r = new Random(8);
        float[] w = random(r, IN * OUT);
        float[] bias = random(r, OUT);
        float[] x = random(r, ROWS * IN);
        Path big = Files.createDirectories(dir.resolve("model")).resolve("w.bin");
        Path small = Files.createDirectories(dir.resolve("other")).resolve("b.bin");
        ByteBuffer wb = ByteBuffer.allocate(4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        wb.asFloatBuffer().put(w);
        Files.write(big, wb.array());
        ByteBuffer bb = ByteBuffer.allocate(4 * bias.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(bias);
        Files.write(small, bb.array());
        Model model = linear(new Tensor(DataType.FLOAT, new long[] {IN, OUT}, new FileData(big, 0, 4L * w.length)),
                new Tensor(DataType.FLOAT, new long[] {OUT}, new FileData(small, 0, 4L * OUT)));
        SerializedModel s = SerializedModel.of(model, 64);
        assertEquals(Set.of("W", "bias"), s.external().keySet());
        assertEquals(Set.of("W"), s.fromFiles(), "ORT reads from one folder: the one with most bytes");
        assertEquals(Set.of("bias"), s.inMemory().keySet());
        try (OrtEngine small64 = new OrtEngine(engine.options().withExternalThresholdBytes(64));
                CompiledGraph g = small64.compile(model)) {
            float[] y = g.run(Map.of("x", Tensor.ofFloats(x, ROWS, IN))).get("y").toFloatArray();
            assertArrayEquals(naive(x, w, bias), y, 1e-4f);
        }
    }

    /** Writes {@code w} after a header of {@code header} bytes. */
    private static Path weightFile(Path dir, float[] w, int header) throws IOException {
        Path file = dir.resolve("weights.bin");
        ByteBuffer bytes = ByteBuffer.allocate(header + 4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.position(header);
        bytes.asFloatBuffer().put(w);
        bytes.position(0);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (bytes.hasRemaining()) {
                ch.write(bytes);
            }
        }
        return file;
    }

    @Test
    void sessionsOfOneEngineShareOneOrtTensorPerFileRegion(@TempDir Path dir) throws Exception {
        Random r = new Random(12);
        float[] w = random(r, IN * OUT);
        float[] bias1 = random(r, OUT);
        float[] bias2 = random(r, OUT);
        float[] x = random(r, ROWS * IN);
        Path file = weightFile(dir, w, 16);
        // Two graphs (say a train step and its evaluation) over the same checkpoint region, through two different
        // Tensor objects as two loads of one checkpoint would give.
        Model first = linear(new Tensor(DataType.FLOAT, new long[] {IN, OUT}, new FileData(file, 16, 4L * w.length)),
                Tensor.ofFloats(bias1, OUT));
        Model second = linear(new Tensor(DataType.FLOAT, new long[] {IN, OUT},
                new FileData(file, 16, 4L * w.length)), Tensor.ofFloats(bias2, OUT));
        Map<String, Tensor> feeds = Map.of("x", Tensor.ofFloats(x, ROWS, IN));
        try (OrtEngine e = new OrtEngine(engine.options())) {
            CompiledGraph g1 = e.compile(first);
            assertEquals(1, e.sharedFileTensorCount());
            try (CompiledGraph g2 = e.compile(second)) {
                assertEquals(1, e.sharedFileTensorCount(), "the second session reuses the first one's tensor");
                assertArrayEquals(naive(x, w, bias1), g1.run(feeds).get("y").toFloatArray(), 1e-4f);
                assertArrayEquals(naive(x, w, bias2), g2.run(feeds).get("y").toFloatArray(), 1e-4f);
            }
            g1.close();
            assertEquals(0, e.sharedFileTensorCount(), "released with the last session using it");
            // A region read differently (another offset) is another tensor; the engine's close releases it.
            Path other = dir.resolve("other");
            Files.createDirectories(other);
            float[] w2 = random(r, IN * OUT);
            Path file2 = weightFile(other, w2, 8);
            e.compile(first);
            CompiledGraph g3 = e.compile(linear(new Tensor(DataType.FLOAT, new long[] {IN, OUT},
                    new FileData(file2, 8, 4L * w2.length)), Tensor.ofFloats(bias1, OUT)));
            assertEquals(2, e.sharedFileTensorCount());
            assertArrayEquals(naive(x, w2, bias1), g3.run(feeds).get("y").toFloatArray(), 1e-4f);
            e.close();
            assertEquals(0, e.sharedFileTensorCount());
        }
        // Sessions that pre-pack keep ORT's own (packed) copy: nothing is shared, results are the same.
        try (OrtEngine packing = new OrtEngine(engine.options().withPrepackLimitBytes(1L << 30));
                CompiledGraph g = packing.compile(first)) {
            assertEquals(0, packing.sharedFileTensorCount());
            assertArrayEquals(naive(x, w, bias1), g.run(feeds).get("y").toFloatArray(), 1e-4f);
        }
    }

    @Test
    void sessionsAboveThePrepackLimitRunWithoutPrepackingAndGiveTheSameResults() throws Exception {
        Random r = new Random(10);
        float[] w = random(r, IN * OUT);
        float[] bias = random(r, OUT);
        float[] x = random(r, ROWS * IN);
        Model model = linear(Tensor.ofFloats(w, IN, OUT), Tensor.ofFloats(bias, OUT));
        assertFalse(engine.prepacks(4L * IN * OUT + 4L * OUT, false), "no model pre-packs by default");
        try (OrtEngine packing = new OrtEngine(engine.options().withPrepackLimitBytes(1L << 30));
                CompiledGraph g = packing.compile(model)) {
            assertTrue(packing.prepacks(4L * IN * OUT + 4L * OUT, false));
            float[] y = g.run(Map.of("x", Tensor.ofFloats(x, ROWS, IN))).get("y").toFloatArray();
            assertArrayEquals(naive(x, w, bias), y, 1e-4f);
        }
        try (OrtEngine lean = new OrtEngine(engine.options().withPrepackLimitBytes(0));
                CompiledGraph g = lean.compile(model)) {
            assertFalse(lean.prepacks(1, false));
            float[] y = g.run(Map.of("x", Tensor.ofFloats(x, ROWS, IN))).get("y").toFloatArray();
            assertArrayEquals(naive(x, w, bias), y, 1e-4f);
        }
    }

    @Test
    void directTensorsAreWrappedInPlaceAndHeapTensorsAreCopiedOnce() throws Exception {
        ByteBuffer direct = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
        direct.asFloatBuffer().put(new float[] {1, 2, 3, 4});
        Tensor t = new Tensor(DataType.FLOAT, new long[] {4}, new BufferData(direct));
        assertSame(t.buffer().isDirect(), true);
        Graph g = new Graph("id");
        GraphBuilder b = new GraphBuilder(g);
        b.output(b.mul(b.input("a", TensorType.of(DataType.FLOAT, 4)), b.constant(2f)), "out");
        OrtEnvironment env = engine.environment();
        try (CompiledGraph cg = engine.compile(new Model(g, GraphBuilder.DEFAULT_OPSET));
                OnnxTensor wrapped = OrtTensors.wrap(env, t)) {
            OrtSession s = cg.session();
            assertArrayEquals(new float[] {2, 4, 6, 8}, run(s, wrapped), 0f);
            // Writing the caller's buffer changes what ORT reads: no copy was taken.
            direct.putFloat(0, 10f);
            assertArrayEquals(new float[] {20, 4, 6, 8}, run(s, wrapped), 0f);
        }
        Tensor heap = Tensor.ofFloats(new float[] {1, 2, 3, 4}, 4);
        ByteBuffer copied = OrtTensors.directBytes(heap);
        assertTrue(copied.isDirect());
        assertNotSame(heap.buffer(), copied);
        assertEquals(heap.buffer(), copied);
    }

    private static float[] run(OrtSession s, OnnxTensor a) throws OrtException {
        try (OrtSession.Result r = s.run(Map.of("a", a))) {
            return ((OnnxTensor) r.get(0)).getFloatBuffer().array();
        }
    }

    /**
     * Why the engine uses {@code addExternalInitializers} and not the zero-copy {@code addInitializer}: ORT 1.29
     * validates every initializer of the protobuf before it looks at added initializers, so an initializer must
     * carry its data (inline or in a real file) and the 2 GiB / copy problem returns. An external-data reference
     * with a synthetic location is accepted only through {@code addExternalInitializers}.
     */
    @Test
    void ortAcceptsSyntheticExternalDataOnlyThroughExternalInitializers() throws Exception {
        Random r = new Random(9);
        Model model = linear(Tensor.ofFloats(random(r, IN * OUT), IN, OUT), Tensor.ofFloats(random(r, OUT), OUT));
        SerializedModel s = SerializedModel.of(model, 1024);
        OrtEnvironment env = engine.environment();
        try (OnnxTensor w = OrtTensors.wrap(env, s.external().get("W"))) {
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
                so.addInitializer("W", w);
                OrtException e = assertThrows(OrtException.class, () -> env.createSession(s.bytes(), so).close());
                assertTrue(e.getMessage().contains("W"), e.getMessage());
            }
            // A data-less initializer (no raw_data, no external reference) is rejected as well.
            ModelProto.Builder p = ModelProto.parseFrom(s.bytes()).toBuilder();
            for (TensorProto.Builder t : p.getGraphBuilder().getInitializerBuilderList()) {
                if (t.getName().equals("W")) {
                    t.clearExternalData().clearDataLocation().setRawData(ByteString.EMPTY);
                }
            }
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
                so.addInitializer("W", w);
                assertThrows(OrtException.class, () -> env.createSession(p.build().toByteArray(), so).close());
            }
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
                so.addExternalInitializers(Map.of("W", w));
                env.createSession(s.bytes(), so).close();
            }
        }
    }

    @Test
    void runRejectsUnknownMissingAndMistypedInputs() {
        Random r = new Random(1);
        Model model = linear(Tensor.ofFloats(random(r, IN * OUT), IN, OUT), Tensor.ofFloats(random(r, OUT), OUT));
        try (CompiledGraph g = engine.compile(model)) {
            EngineException unknown = assertThrows(EngineException.class,
                    () -> g.run(Map.of("x", Tensor.ofFloats(new float[IN], 1, IN), "z", Tensor.scalar(1f))));
            assertTrue(unknown.getMessage().contains("no input(s) [z]"), unknown.getMessage());
            EngineException missing = assertThrows(EngineException.class, () -> g.run(Map.of()));
            assertTrue(missing.getMessage().contains("needs input(s) [x]"), missing.getMessage());
            EngineException shape = assertThrows(EngineException.class,
                    () -> g.run(Map.of("x", Tensor.ofFloats(new float[3], 1, 3))));
            assertTrue(shape.getMessage().contains("expects shape [-1, 64]"), shape.getMessage());
        }
    }
}
