package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.BlockQuantizer;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.onnx.quant.QuantizedMatrix;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * ONNX Runtime's MatMulNBits over weights quantized by {@link BlockQuantizer} computes {@code x · Ŵ} with Ŵ the
 * Java dequantization (so the layout, packing and zero points agree with ONNX Runtime's), forward and through the
 * gradient rule's transposed copy.
 */
class QuantizedMatMulTest {
    private static final int ROWS = 6;
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1));
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static float[] random(Random r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    /**
     * fp32 compute: ONNX Runtime dequantizes exactly as Java does, so only float summation order differs (1e-5);
     * int8 compute also quantizes activations to int8 per block (about 1% relative error).
     */
    @ParameterizedTest
    @CsvSource({"4, 32, true, fp32, true, 96, 40", "4, 64, false, fp32, false, 128, 24", "8, 32, true, fp32, false, 64, 48",
            "8, 128, false, fp32, true, 160, 32", "4, 128, true, fp32, true, 80, 16", "4, 32, true, int8, false, 128, 64",
            "8, 64, false, int8, true, 128, 40"})
    void forwardAndInputGradientMatchTheJavaDequantization(int bits, int blockSize, boolean symmetric, String compute,
            boolean linearLayout, int k, int n) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.parse(compute));
        Random r = new Random(k * 7L + n + bits);
        float[] x = random(r, ROWS * k, 1);
        float[] c = random(r, ROWS * n, 1);
        float[] wv = random(r, k * n, 0.05);
        // nn.Linear keeps W [n, k] read through Gemm transB; GPT-2's Conv1D keeps W [k, n] read through MatMul.
        Tensor w = linearLayout ? Tensor.ofFloats(wv, n, k) : Tensor.ofFloats(wv, k, n);

        Graph g = new Graph("q");
        GraphBuilder b = new GraphBuilder(g);
        Value xv = b.initializer("x", Tensor.ofFloats(x, ROWS, k));
        Value wValue = b.initializer("W", w);
        Value y = linearLayout ? b.gemm(xv, wValue, null, 1f, 1f, false, true) : b.matMul(xv, wValue);
        Value loss = b.reduceSum(b.mul(y, b.initializer("c", Tensor.ofFloats(c, ROWS, n))), new long[] {0, 1}, false);
        b.output(y, "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.Result result = QuantizedLinears.quantize(m, List.of("W"), spec, true);
        assertEquals(1, result.layers().size());
        assertTrue(QuantizedLinears.usesContribOps(m));
        Value gx = Autodiff.gradients(g, loss, List.of(g.requireValue("x")), (int) m.opset()).get("x");
        b.output(gx, "dx");

        Map<String, Tensor> out;
        try (CompiledGraph compiled = engine.compile(m)) {
            out = compiled.run(Map.of());
        }
        float[] fwd = BlockQuantizer.quantize(w, linearLayout, spec).dequantize(); // [n, k]
        float[] bwd = BlockQuantizer.quantize(w, !linearLayout, spec).dequantize(); // [k, n]
        double[] yRef = new double[ROWS * n];
        double[] dxRef = new double[ROWS * k];
        for (int row = 0; row < ROWS; row++) {
            for (int o = 0; o < n; o++) {
                for (int i = 0; i < k; i++) {
                    yRef[row * n + o] += (double) x[row * k + i] * fwd[o * k + i];
                    dxRef[row * k + i] += (double) c[row * n + o] * bwd[i * n + o];
                }
            }
        }
        double tolerance = spec.compute() == QuantSpec.Compute.FP32 ? 1e-5 : 2e-2;
        assertClose(yRef, out.get("y").toFloatArray(), tolerance, "y");
        assertClose(dxRef, out.get("dx").toFloatArray(), tolerance, "dx");
    }

    /** Relative Frobenius error below {@code tolerance}. */
    private static void assertClose(double[] expected, float[] actual, double tolerance, String what) {
        assertEquals(expected.length, actual.length, what);
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            num += (expected[i] - actual[i]) * (expected[i] - actual[i]);
            den += expected[i] * expected[i];
        }
        double rel = Math.sqrt(num / den);
        assertTrue(rel < tolerance, what + ": relative error " + rel + " above " + tolerance);
    }
}
