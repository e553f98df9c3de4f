package dev.pet.onnx.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ChannelQuantizerTest {
    /**
     * Codes and scales equal a naive reference bit for bit (one scale max|w|/127 per output channel, rint of the
     * float quotient), in both layouts and whether the weight is on the heap or streamed from a file; an all-zero
     * channel gets scale 1 and codes 0; the transposed codes are the same bytes in [K, N] order.
     */
    @ParameterizedTest
    @CsvSource({"true, 5, 37", "false, 37, 5", "true, 64, 48", "false, 48, 64"})
    void matchesANaiveReferenceBitForBit(boolean kAlongColumns, int rows, int cols) {
        Random r = new Random(rows * 100L + cols);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05);
        }
        int n = kAlongColumns ? rows : cols;
        int k = kAlongColumns ? cols : rows;
        // channel 1 all zero
        for (int i = 0; i < k; i++) {
            w[kAlongColumns ? cols + i : i * cols + 1] = 0;
        }
        Tensor heap = Tensor.ofFloats(w, rows, cols);
        Tensor file = ScratchFile.create("test").append(List.of(heap)).get(0);
        assertInstanceOf(FileData.class, file.data());
        for (Tensor t : List.of(heap, file)) {
            ChannelQuantizer.Quantized q = ChannelQuantizer.quantize(t, kAlongColumns);
            assertEquals(n, q.rows());
            assertEquals(k, q.columns());
            ByteBuffer codes = q.codes().buffer();
            ByteBuffer transposed = q.transposedCodes().buffer();
            float[] scales = q.scales().toFloatArray();
            float[] deq = q.dequantize();
            double sum = 0;
            double err = 0;
            for (int c = 0; c < n; c++) {
                float amax = 0;
                for (int i = 0; i < k; i++) {
                    amax = Math.max(amax, Math.abs(w[kAlongColumns ? c * cols + i : i * cols + c]));
                }
                float scale = amax == 0 ? 1f : amax / 127;
                assertEquals(Float.floatToIntBits(scale), Float.floatToIntBits(scales[c]), "scale of channel " + c);
                for (int i = 0; i < k; i++) {
                    float v = w[kAlongColumns ? c * cols + i : i * cols + c];
                    int code = (int) Math.rint(v / scale);
                    assertEquals(code, codes.get(c * k + i), "code " + i + " of channel " + c);
                    assertEquals(code, transposed.get(i * n + c), "transposed code " + i + " of channel " + c);
                    assertEquals(code * scale, deq[c * k + i], 0f);
                    assertTrue(Math.abs(v - code * scale) <= scale * 0.5001f, "rounding error above half a step");
                    sum += (double) v * v;
                    err += ((double) v - code * scale) * ((double) v - code * scale);
                }
            }
            assertEquals(1f, scales[1], "an all-zero channel");
            assertEquals(Math.sqrt(err / sum), q.relativeError(), 1e-12);
        }
    }

    /**
     * A weight of more than one slab (2^22 values; the boundary falls inside a row) and read in file chunks gives the
     * reference codes and scales too, whichever part of a chunk each thread takes.
     */
    @ParameterizedTest
    @CsvSource({"true", "false"})
    void largeWeightsAcrossSlabsAndChunks(boolean kAlongColumns) {
        int rows = 2049;
        int cols = 2051;
        Random r = new Random(11);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05);
        }
        int n = kAlongColumns ? rows : cols;
        int k = kAlongColumns ? cols : rows;
        float[] amax = new float[n];
        for (int i = 0; i < w.length; i++) {
            int c = kAlongColumns ? i / cols : i % cols;
            amax[c] = Math.max(amax[c], Math.abs(w[i]));
        }
        Tensor heap = Tensor.ofFloats(w, rows, cols);
        for (Tensor t : List.of(heap, ScratchFile.create("test").append(List.of(heap)).get(0))) {
            ChannelQuantizer.Quantized q = ChannelQuantizer.quantize(t, kAlongColumns);
            ByteBuffer codes = q.codes().buffer();
            float[] scales = q.scales().toFloatArray();
            for (int c = 0; c < n; c++) {
                assertEquals(amax[c] / 127, scales[c], 0f, "scale of channel " + c);
            }
            int firstWrong = -1;
            for (int i = 0; i < w.length && firstWrong < 0; i++) {
                int c = kAlongColumns ? i / cols : i % cols;
                int at = kAlongColumns ? i % cols : i / cols;
                firstWrong = (int) Math.rint(w[i] / scales[c]) == codes.get(c * k + at) ? -1 : i;
            }
            assertEquals(-1, firstWrong, "the first element whose code differs");
            ByteBuffer transposed = q.transposedCodes().buffer();
            for (int c = 0; c < n; c += 97) {
                for (int i = 0; i < k; i++) {
                    assertEquals(codes.get(c * k + i), transposed.get(i * n + c));
                }
            }
        }
    }

    @Test
    void readsHalfPrecisionWeightsAndRefusesOthers() {
        Tensor fp16 = Tensor.fromDoubles(DataType.FLOAT16, new double[] {0.5, -0.25, 0.125, 1}, 2, 2);
        ChannelQuantizer.Quantized a = ChannelQuantizer.quantize(fp16, true);
        ChannelQuantizer.Quantized b = ChannelQuantizer.quantize(Tensor.ofFloats(new float[] {0.5f, -0.25f, 0.125f,
                1f}, 2, 2), true);
        assertEquals(a.codes().buffer(), b.codes().buffer());
        assertEquals(a.scales().buffer(), b.scales().buffer());
        var e = assertThrows(dev.pet.onnx.OnnxException.class,
                () -> ChannelQuantizer.quantize(Tensor.ofLongs(new long[] {1, 2}, 1, 2), true));
        assertTrue(e.getMessage().contains("expected a 2-D FLOAT"), e.getMessage());
    }

    /**
     * The function body is written for the model's opset (ReduceMax's axes an attribute before 18, an input since)
     * and written again when the model's opset is raised.
     */
    @Test
    void theFunctionBodyFollowsTheModelsOpset() {
        Graph g = new Graph("m");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 2, 8));
        b.output(b.matMul(x, b.initializer("W", Tensor.ofFloats(new float[64], 8, 8))), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.quantize(m, List.of("W"), new QuantSpec(8, 64, true, QuantSpec.Compute.INT8,
                QuantSpec.Kernel.MATMUL_INTEGER), false);
        assertEquals(1, reduceMaxInputs(m, GraphBuilder.DEFAULT_OPSET));
        OpsetUpgrade.atLeast(m, 21);
        assertEquals(2, reduceMaxInputs(m, 21));
    }

    /** The inputs of the function's ReduceMax, after checking the body's default-domain opset. */
    private static int reduceMaxInputs(Model m, int opset) {
        ModelProto residual = assertInstanceOf(ModelProto.class, m.residual());
        assertEquals(1, residual.getFunctionsCount(), "one definition");
        var f = residual.getFunctions(0);
        assertEquals(opset, f.getOpsetImportList().stream().filter(o -> o.getDomain().isEmpty()).findFirst()
                .orElseThrow().getVersion());
        return f.getNodeList().stream().filter(n -> n.getOpType().equals("ReduceMax")).findFirst().orElseThrow()
                .getInputCount();
    }

    /** The storage of the codes follows the CPU unless the property says otherwise; a bad value is named. */
    @Test
    void theCodesAreStoredAsTheCpuMultipliesThemExactly() {
        try {
            System.setProperty(IntegerLinears.CODES_PROPERTY, "unsigned");
            assertTrue(!IntegerLinears.signedCodes());
            System.setProperty(IntegerLinears.CODES_PROPERTY, "signed");
            assertTrue(IntegerLinears.signedCodes());
            System.setProperty(IntegerLinears.CODES_PROPERTY, "auto");
            assertEquals(IntegerLinears.signedCodesSafe(), IntegerLinears.signedCodes());
            System.setProperty(IntegerLinears.CODES_PROPERTY, "maybe");
            var e = assertThrows(dev.pet.onnx.OnnxException.class, IntegerLinears::signedCodes);
            assertTrue(e.getMessage().contains(IntegerLinears.CODES_PROPERTY), e.getMessage());
        } finally {
            System.clearProperty(IntegerLinears.CODES_PROPERTY);
        }
        boolean x86 = List.of("amd64", "x86_64", "x86").contains(System.getProperty("os.arch"));
        if (x86 && Files.isReadable(Path.of("/proc/cpuinfo"))) {
            boolean vnni;
            try {
                String all = Files.readString(Path.of("/proc/cpuinfo"));
                vnni = all.contains(" avx512_vnni") || all.contains(" avx_vnni");
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            assertEquals(vnni, IntegerLinears.signedCodesSafe(), "signed codes exactly when the CPU has VNNI");
        }
    }

    /** Kernel matmul_integer's settings: 8 bits, symmetric, int8 compute; anything else names its key. */
    @Test
    void refusesSettingsTheInt8GemmCannotRun() {
        QuantSpec.Kernel integer = QuantSpec.Kernel.MATMUL_INTEGER;
        assertEquals("bits", assertThrows(QuantSpec.Invalid.class,
                () -> new QuantSpec(4, 64, true, QuantSpec.Compute.INT8, integer)).key());
        assertEquals("symmetric", assertThrows(QuantSpec.Invalid.class,
                () -> new QuantSpec(8, 64, false, QuantSpec.Compute.INT8, integer)).key());
        assertEquals("compute", assertThrows(QuantSpec.Invalid.class,
                () -> new QuantSpec(8, 64, true, QuantSpec.Compute.FP32, integer)).key());
        QuantSpec ok = new QuantSpec(8, 64, true, QuantSpec.Compute.INT8, integer);
        assertTrue(ok.perChannel());
        assertTrue(ok.describe().contains("block_size=channel"), ok.describe());
        assertEquals("kernel", assertThrows(QuantSpec.Invalid.class, () -> QuantizedLinears.requireLookupKernel(ok))
                .key());
    }

    /**
     * The model defines the function its products call; written to a file and read back, the definition and the
     * opset imports come along, and one definition serves every product.
     */
    @Test
    void theFunctionDefinitionTravelsWithTheModel(@TempDir Path dir) {
        Graph g = new Graph("m");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 2, 8));
        Random r = new Random(3);
        float[] w = new float[8 * 8];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        Value h = b.matMul(x, b.initializer("W1", Tensor.ofFloats(w, 8, 8)));
        b.output(b.matMul(h, b.initializer("W2", Tensor.ofFloats(w, 8, 8))), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.quantize(m, List.of("W1", "W2"), new QuantSpec(8, 64, true, QuantSpec.Compute.INT8,
                QuantSpec.Kernel.MATMUL_INTEGER), true);
        assertEquals(2, g.nodes().stream().filter(IntegerLinears::isProduct).count());
        Path file = dir.resolve("m.onnx");
        OnnxFiles.write(m, file);
        assertTrue(Files.isRegularFile(file));
        Model back = OnnxFiles.read(file);
        ModelProto residual = assertInstanceOf(ModelProto.class, back.residual());
        assertEquals(1, residual.getFunctionsCount());
        assertEquals(IntegerLinears.OP, residual.getFunctions(0).getName());
        assertEquals(IntegerLinears.DOMAIN, residual.getFunctions(0).getDomain());
        assertEquals(1L, back.opsets().get(IntegerLinears.DOMAIN));
        assertEquals(1L, back.opsets().get(QuantizedLinears.DOMAIN));
        assertTrue(QuantizedLinears.hasQuantizedWeights(back) && QuantizedLinears.usesContribOps(back));
        DataType stored = IntegerLinears.signedCodes() ? DataType.INT8 : DataType.UINT8;
        assertEquals(stored, back.graph().initializer("W1.qweight").dataType());
        assertEquals(stored, back.graph().initializer("W1.qweight_t").dataType());
    }
}
