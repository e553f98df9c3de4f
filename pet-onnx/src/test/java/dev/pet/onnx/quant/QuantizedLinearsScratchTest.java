package dev.pet.onnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class QuantizedLinearsScratchTest {
    private static byte[] bytes(Tensor t) {
        ByteBuffer b = t.buffer();
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /**
     * A weight read from a file (as random presets and checkpoints are) is quantized into scratch-file regions whose
     * bytes are exactly those of the in-memory quantizer, for both the forward and the transposed copy.
     */
    @ParameterizedTest
    @CsvSource({"4, 32, true, true", "4, 64, false, false", "8, 32, false, true"})
    void quantizedCopiesInTheScratchFileEqualTheInMemoryQuantizer(int bits, int blockSize, boolean symmetric,
            boolean linearLayout) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS);
        int k = 96;
        int n = 40;
        Random r = new Random(bits + blockSize);
        float[] wv = new float[k * n];
        for (int i = 0; i < wv.length; i++) {
            wv[i] = (float) (r.nextGaussian() * 0.05);
        }
        Tensor heap = linearLayout ? Tensor.ofFloats(wv, n, k) : Tensor.ofFloats(wv, k, n);
        Tensor w = ScratchFile.create("test").append(List.of(heap)).get(0);
        Graph g = new Graph("q");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", dev.pet.onnx.ir.TensorType.of(dev.pet.onnx.tensor.DataType.FLOAT, 2, k));
        Value wValue = b.initializer("W", w);
        b.output(linearLayout ? b.gemm(x, wValue, null, 1f, 1f, false, true) : b.matMul(x, wValue), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);

        QuantizedLinears.quantize(m, List.of("W"), spec, true);

        QuantizedMatrix fwd = BlockQuantizer.quantize(heap, linearLayout, spec);
        QuantizedMatrix bwd = BlockQuantizer.quantize(heap, !linearLayout, spec);
        for (String suffix : List.of("", "_t")) {
            QuantizedMatrix expected = suffix.isEmpty() ? fwd : bwd;
            assertStored(expected.codes(), g.initializer("W.qweight" + suffix));
            assertStored(expected.scales(), g.initializer("W.scales" + suffix));
            if (!symmetric) {
                assertStored(expected.zeroPoints(), g.initializer("W.qzeros" + suffix));
            }
        }
    }

    private static void assertStored(Tensor expected, Tensor stored) {
        FileData fd = assertInstanceOf(FileData.class, stored.data());
        assertEquals(ScratchFile.folder(), fd.file().getParent());
        assertEquals(expected.dataType(), stored.dataType());
        assertArrayEquals(expected.shape(), stored.shape());
        assertArrayEquals(bytes(expected), bytes(stored));
    }
}
