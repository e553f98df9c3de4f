package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OnnxFilesTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    @TempDir
    Path dir;

    private static Model mlp() {
        Random r = new Random(2);
        Graph g = new Graph("mlp");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", 8L));
        float[] w = new float[8 * 16];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        Value h = b.tanh(b.matMul(x, b.initializer("w", Tensor.ofFloats(w, 8, 16))));
        b.output(b.softmax(b.add(h, b.initializer("bias", Tensor.ofFloats(new float[16], 16))), -1), "y");
        Model m = new Model(g, 17);
        m.setDocString("test model");
        m.metadata().put("k", "v");
        return m;
    }

    private static float[] run(OrtSession s) throws Exception {
        float[] x = new float[16];
        for (int i = 0; i < x.length; i++) {
            x[i] = i / 10f - 0.5f;
        }
        try (OnnxTensor t = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(x), new long[] {2, 8});
                OrtSession.Result r = s.run(Map.of("x", t))) {
            FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
            float[] out = new float[fb.remaining()];
            fb.get(out);
            return out;
        }
    }

    @Test
    void roundTripsInlineAndWithExternalData() throws Exception {
        Model m = mlp();
        Path inline = dir.resolve("inline.onnx");
        OnnxFiles.write(m, inline);
        Path ext = dir.resolve("ext").resolve("model.onnx");
        OnnxFiles.writeWithExternalData(m, ext, "weights.bin", 64);
        assertTrue(Files.size(ext.resolveSibling("weights.bin")) >= 8 * 16 * 4);
        assertTrue(Files.size(ext) < Files.size(inline), "weights are not in the protobuf");

        for (Path p : new Path[] {inline, ext}) {
            Model back = OnnxFiles.read(p);
            assertEquals("test model", back.docString());
            assertEquals("v", back.metadata().get("k"));
            assertEquals(m.graph().nodes().size(), back.graph().nodes().size());
            assertEquals(m.graph().initializer("w").buffer(), back.graph().initializer("w").buffer());
        }
        assertInstanceOf(FileData.class, OnnxFiles.read(ext).graph().initializer("w").data(), "mapped, not copied");
        ModelProto proto = ModelProto.parseFrom(Files.readAllBytes(ext));
        TensorProto w = proto.getGraph().getInitializerList().stream().filter(t -> t.getName().equals("w"))
                .findFirst().orElseThrow();
        assertEquals(TensorProto.DataLocation.EXTERNAL, w.getDataLocation());
        assertEquals("weights.bin", OnnxFiles.externalEntries(w).get("location"));
        assertEquals(0, Long.parseLong(OnnxFiles.externalEntries(w).get("offset")) % 64, "aligned");

        try (OrtSession a = ENV.createSession(inline.toString(), new OrtSession.SessionOptions());
                OrtSession b = ENV.createSession(ext.toString(), new OrtSession.SessionOptions())) {
            assertArrayEquals(run(a), run(b), "ONNX Runtime reads our external data");
        }
    }

    @Test
    void rejectsExternalDataOutsideTheModelFolderOrOutOfBounds() throws Exception {
        Model m = mlp();
        Path ext = dir.resolve("m").resolve("model.onnx");
        OnnxFiles.writeWithExternalData(m, ext, "weights.bin", 64);
        ModelProto good = ModelProto.parseFrom(Files.readAllBytes(ext));
        assertRejected(ext, good, "location", "/etc/passwd", "relative path");
        assertRejected(ext, good, "location", "../weights.bin", "relative path");
        assertRejected(ext, good, "location", "missing.bin", "does not exist");
        assertRejected(ext, good, "offset", "999999", "needs 512 bytes");
        assertRejected(ext, good, "length", "4", "needs 512 bytes");
        assertRejected(ext, good, "offset", "abc", "non-numeric");
    }

    private void assertRejected(Path ext, ModelProto good, String key, String value, String fragment)
            throws Exception {
        ModelProto.Builder b = good.toBuilder();
        var g = b.getGraphBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals("w")) {
                TensorProto.Builder t = g.getInitializer(i).toBuilder();
                for (int k = 0; k < t.getExternalDataCount(); k++) {
                    if (t.getExternalData(k).getKey().equals(key)) {
                        t.setExternalData(k, StringStringEntryProto.newBuilder().setKey(key).setValue(value));
                    }
                }
                g.setInitializer(i, t);
            }
        }
        Path bad = ext.resolveSibling("bad.onnx");
        Files.write(bad, b.build().toByteArray());
        OnnxException e = assertThrows(OnnxException.class, () -> OnnxFiles.read(bad));
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains(bad.toString()), e.getMessage());
    }

    @Test
    void keepsFieldsItDoesNotModel() throws Exception {
        // A model assembled field by field, with fields our schema does not declare at three levels.
        ByteArrayOutputStream node = new ByteArrayOutputStream();
        CodedOutputStream n = CodedOutputStream.newInstance(node);
        n.writeString(1, "x");
        n.writeString(2, "y");
        n.writeString(3, "n");
        n.writeString(4, "Identity");
        n.writeUInt64(99, 12345);
        n.flush();
        ByteArrayOutputStream type = new ByteArrayOutputStream();
        CodedOutputStream ty = CodedOutputStream.newInstance(type);
        ByteArrayOutputStream tensorType = new ByteArrayOutputStream();
        CodedOutputStream tt = CodedOutputStream.newInstance(tensorType);
        tt.writeInt32(1, 1);
        tt.flush();
        ty.writeByteArray(1, tensorType.toByteArray());
        ty.flush();
        ByteArrayOutputStream graph = new ByteArrayOutputStream();
        CodedOutputStream g = CodedOutputStream.newInstance(graph);
        g.writeByteArray(1, node.toByteArray());
        g.writeString(2, "g");
        for (int field : new int[] {11, 12}) {
            ByteArrayOutputStream vi = new ByteArrayOutputStream();
            CodedOutputStream v = CodedOutputStream.newInstance(vi);
            v.writeString(1, field == 11 ? "x" : "y");
            v.writeByteArray(2, type.toByteArray());
            v.flush();
            g.writeByteArray(field, vi.toByteArray());
        }
        g.writeString(99, "graph extension");
        g.flush();
        ByteArrayOutputStream model = new ByteArrayOutputStream();
        CodedOutputStream mo = CodedOutputStream.newInstance(model);
        mo.writeInt64(1, 8);
        ByteArrayOutputStream opset = new ByteArrayOutputStream();
        CodedOutputStream op = CodedOutputStream.newInstance(opset);
        op.writeString(1, "");
        op.writeInt64(2, 17);
        op.flush();
        mo.writeByteArray(8, opset.toByteArray());
        mo.writeString(2, "elsewhere");
        mo.writeByteArray(7, graph.toByteArray());
        mo.writeByteArray(20, new byte[] {0x0a, 0x00}); // training_info: not modelled
        mo.writeFixed64(1000, 0xCAFEL);
        mo.flush();
        byte[] original = model.toByteArray();

        Model ir = OnnxSerializer.fromBytes(original);
        assertEquals("elsewhere", ir.producerName());
        byte[] written = OnnxSerializer.toBytes(ir);
        ModelProto before = ModelProto.parseFrom(original);
        ModelProto after = ModelProto.parseFrom(written);
        assertEquals(before.getUnknownFields(), after.getUnknownFields(), "model-level unknown fields");
        assertEquals(before.getGraph().getUnknownFields(), after.getGraph().getUnknownFields(), "graph-level");
        assertEquals(before.getGraph().getNode(0).getUnknownFields(), after.getGraph().getNode(0).getUnknownFields(),
                "node-level");
        assertEquals(ByteString.copyFrom(new byte[] {0x0a, 0x00}),
                after.getUnknownFields().getField(20).getLengthDelimitedList().get(0));
        try (OrtSession s = ENV.createSession(written, new OrtSession.SessionOptions())) {
            assertEquals(1, s.getNumOutputs(), "what we write back still loads in ONNX Runtime");
        }
    }

    @Test
    void fuzzedModelsFailOnlyWithCleanErrors() {
        byte[] good = OnnxSerializer.toBytes(mlp());
        Random r = new Random(23);
        for (int i = 0; i < 400; i++) {
            byte[] b = i % 2 == 0 ? java.util.Arrays.copyOf(good, r.nextInt(good.length)) : good.clone();
            if (i % 2 == 1) {
                for (int k = 0; k <= r.nextInt(3); k++) {
                    b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
                }
            }
            try {
                OnnxSerializer.fromBytes(b);
            } catch (OnnxException e) {
                assertTrue(e.getMessage() != null && !e.getMessage().isBlank());
            } catch (RuntimeException | OutOfMemoryError e) {
                fail("case " + i + " escaped as " + e, e);
            }
        }
    }

    @Test
    @Tag("slow")
    void writesAndReadsAModelAboveTwoGibibytes() throws Exception {
        Graph g = new Graph("big");
        GraphBuilder b = new GraphBuilder(g);
        long elements = (2L << 30) / 4 + 1024; // just over 2 GiB of float32
        Tensor zeros = Tensor.zeros(DataType.FLOAT, elements);
        Value big = b.initializer("big", zeros);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 4));
        b.output(b.add(x, b.initializer("small", Tensor.ofFloats(new float[] {1, 2, 3, 4}, 4))), "y");
        b.output(b.shape(big), "big_shape");
        Path file = dir.resolve("big").resolve("model.onnx");
        try {
            OnnxFiles.write(new Model(g, 17), file);
            assertTrue(Files.size(file) < (1 << 20), "the protobuf holds only references");
            Path data = file.resolveSibling("model.onnx.data");
            assertTrue(Files.size(data) >= zeros.byteSize());
            Model back = OnnxFiles.read(file);
            Tensor t = back.graph().initializer("big");
            assertEquals(zeros.byteSize(), t.byteSize());
            assertInstanceOf(FileData.class, t.data());
            assertArrayEquals(new float[] {1, 2, 3, 4}, back.graph().initializer("small").toFloatArray());
        } finally {
            Files.deleteIfExists(file.resolveSibling("model.onnx.data"));
            Files.deleteIfExists(file);
        }
    }
}
