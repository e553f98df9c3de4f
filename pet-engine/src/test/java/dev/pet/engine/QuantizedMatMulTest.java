package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.BlockQuantizer;
import dev.pet.onnx.quant.ChannelQuantizer;
import dev.pet.onnx.quant.IntegerLinears;
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
import org.junit.jupiter.api.Test;
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

    /** A linear {@code y = x · W} as a model reads it, with loss {@code Σ y ⊙ c} to differentiate. */
    private record Linear(Graph graph, GraphBuilder builder, Model model, Tensor w, Value loss) {
    }

    /**
     * nn.Linear keeps W [n, k] read through Gemm transB; GPT-2's Conv1D keeps W [k, n] read through MatMul, whose
     * readers see a 3-D input [2, ROWS/2, k], as in a model. y is an output; x and c are initializers.
     */
    private static Linear linear(boolean linearLayout, float[] x, float[] c, float[] wv, int k, int n) {
        Tensor w = linearLayout ? Tensor.ofFloats(wv, n, k) : Tensor.ofFloats(wv, k, n);
        long[] xShape = linearLayout ? new long[] {ROWS, k} : new long[] {2, ROWS / 2, k};
        long[] yShape = linearLayout ? new long[] {ROWS, n} : new long[] {2, ROWS / 2, n};
        Graph g = new Graph("q");
        GraphBuilder b = new GraphBuilder(g);
        Value xv = b.initializer("x", Tensor.ofFloats(x, xShape));
        Value wValue = b.initializer("W", w);
        Value y = linearLayout ? b.gemm(xv, wValue, null, 1f, 1f, false, true) : b.matMul(xv, wValue);
        Value loss = b.reduceSum(b.mul(y, b.initializer("c", Tensor.ofFloats(c, yShape))),
                linearLayout ? new long[] {0, 1} : new long[] {0, 1, 2}, false);
        b.output(y, "y");
        return new Linear(g, b, new Model(g, GraphBuilder.DEFAULT_OPSET), w, loss);
    }

    /** Adds {@code dx = ∂loss/∂x} as an output and runs the model once: y and dx. */
    private static Map<String, Tensor> runWithInputGradient(Linear lin) {
        Graph g = lin.graph();
        lin.builder().output(Autodiff.gradients(g, lin.loss(), List.of(g.requireValue("x")),
                (int) lin.model().opset()).get("x"), "dx");
        try (CompiledGraph compiled = engine.compile(lin.model())) {
            return compiled.run(Map.of());
        }
    }

    /**
     * fp32 compute: ONNX Runtime dequantizes exactly as Java does, so only float summation order differs (1e-5);
     * int8 compute also quantizes activations to int8 per block (about 1% relative error). Kernel matmul_nbits
     * multiplies the input gradient by the transposed copy, kernel dequantize by the forward copy itself; a 3-D
     * input goes through kernel dequantize's flatten and reshape.
     */
    @ParameterizedTest
    @CsvSource({"4, 32, true, fp32, true, 96, 40, matmul_nbits", "4, 64, false, fp32, false, 128, 24, matmul_nbits",
            "8, 32, true, fp32, false, 64, 48, matmul_nbits", "8, 128, false, fp32, true, 160, 32, matmul_nbits",
            "4, 128, true, fp32, true, 80, 16, matmul_nbits", "4, 32, true, int8, false, 128, 64, matmul_nbits",
            "8, 64, false, int8, true, 128, 40, matmul_nbits", "4, 32, true, fp32, true, 96, 40, dequantize",
            "4, 64, false, fp32, false, 128, 24, dequantize", "8, 32, true, fp32, false, 64, 48, dequantize",
            "8, 128, false, fp32, true, 256, 32, dequantize", "4, 32, false, fp32, false, 96, 17, dequantize"})
    void forwardAndInputGradientMatchTheJavaDequantization(int bits, int blockSize, boolean symmetric, String compute,
            boolean linearLayout, int k, int n, String kernel) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.parse(compute),
                QuantSpec.Kernel.parse(kernel));
        boolean dequantize = spec.kernel() == QuantSpec.Kernel.DEQUANTIZE;
        Random r = new Random(k * 7L + n + bits);
        float[] x = random(r, ROWS * k, 1);
        float[] c = random(r, ROWS * n, 1);
        float[] wv = random(r, k * n, 0.05);
        Linear lin = linear(linearLayout, x, c, wv, k, n);
        Tensor w = lin.w();
        Model m = lin.model();
        assertEquals(1, QuantizedLinears.quantize(m, List.of("W"), spec, true).layers().size());
        assertEquals(!dequantize, QuantizedLinears.usesContribOps(m));
        assertTrue(QuantizedLinears.hasQuantizedWeights(m));
        assertEquals(dequantize ? 21 : GraphBuilder.DEFAULT_OPSET, m.opset());
        Map<String, Tensor> out = runWithInputGradient(lin);
        if (dequantize) {
            // one stored copy: no transposed initializers, and the backward pass dequantizes it again
            Graph g = lin.graph();
            assertTrue(g.initializers().keySet().stream().noneMatch(name -> name.endsWith("_t")),
                    g.initializers().keySet().toString());
            assertEquals(2, g.nodes().stream().filter(QuantizedLinears::isQuantizedWeight).count());
        }
        float[] fwd = BlockQuantizer.quantize(w, linearLayout, spec).dequantize(); // [n, k]
        float[] bwd = BlockQuantizer.quantize(w, !linearLayout, spec).dequantize(); // [k, n]
        double[] yRef = new double[ROWS * n];
        double[] dxRef = new double[ROWS * k];
        for (int row = 0; row < ROWS; row++) {
            for (int o = 0; o < n; o++) {
                for (int i = 0; i < k; i++) {
                    yRef[row * n + o] += (double) x[row * k + i] * fwd[o * k + i];
                    dxRef[row * k + i] += (double) c[row * n + o] * (dequantize ? fwd[o * k + i] : bwd[i * n + o]);
                }
            }
        }
        double tolerance = spec.compute() == QuantSpec.Compute.FP32 ? 1e-5 : 2e-2;
        assertClose(yRef, out.get("y").toFloatArray(), tolerance, "y");
        assertClose(dxRef, out.get("dx").toFloatArray(), tolerance, "dx");
    }

    /** ONNX Runtime's DequantizeLinear over kernel dequantize's tensors gives the Java dequantization bit for bit. */
    @ParameterizedTest
    @CsvSource({"4, 32, true, 64, 40", "4, 64, false, 192, 24", "8, 32, true, 64, 48", "8, 128, false, 256, 8",
            "4, 32, false, 96, 3"})
    void dequantizeLinearMatchesTheJavaDequantizationBitForBit(int bits, int blockSize, boolean symmetric, int k,
            int n) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.FP32,
                QuantSpec.Kernel.DEQUANTIZE);
        Random r = new Random(k * 13L + n + bits);
        Tensor w = Tensor.ofFloats(random(r, k * n, 0.05), n, k);
        Graph g = new Graph("dq");
        GraphBuilder b = new GraphBuilder(g);
        Value y = b.gemm(b.initializer("x", Tensor.ofFloats(random(r, 2 * k, 1), 2, k)), b.initializer("W", w), null,
                1f, 1f, false, true);
        b.output(y, "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.quantize(m, List.of("W"), spec, false);
        Value dq = g.nodes().stream().filter(QuantizedLinears::isQuantizedWeight).findFirst().orElseThrow().output(0);
        g.addOutput(dq);
        Map<String, Tensor> out;
        try (CompiledGraph compiled = engine.compile(m)) {
            out = compiled.run(Map.of());
        }
        float[] expected = BlockQuantizer.quantize(w, true, spec).dequantize();
        float[] actual = out.get(dq.name()).toFloatArray();
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]), "element " + i);
        }
    }

    /**
     * An embedding table quantized for ONNX Runtime's GatherBlockQuantized looks up exactly the rows of the Java
     * dequantization (bit for bit: both compute (code - zero point) · scale in float32), for 4 and 8 bits, symmetric
     * and asymmetric (an odd number of blocks per row packs 4-bit zero points with a padding nibble); a table that
     * also feeds a tied head's quantized copy is looked up through that copy, and {@code dequantize} turns the lookup
     * back into a Gather over the float table.
     */
    @ParameterizedTest
    @CsvSource({"4, 32, true, 96", "4, 64, false, 192", "8, 32, true, 64", "8, 128, false, 256", "4, 32, false, 96",
            "8, 32, false, 96"})
    void gatherBlockQuantizedLooksUpTheJavaDequantizationBitForBit(int bits, int blockSize, boolean symmetric, int k) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.FP32,
                QuantSpec.Kernel.MATMUL_NBITS);
        int vocab = 37;
        Random r = new Random(k * 3L + bits + blockSize);
        Tensor table = Tensor.ofFloats(random(r, vocab * k, 0.05), vocab, k);
        long[] ids = {0, 36, 5, 5, 17, 2};
        Graph g = new Graph("lookup");
        GraphBuilder b = new GraphBuilder(g);
        Value rows = b.gather(b.initializer("wte", table), b.input("ids", TensorType.of(DataType.INT64, 2, 3)), 0);
        b.output(rows, "rows");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.Layer layer = QuantizedLinears.quantizeEmbedding(m, "wte", spec, null);
        assertEquals(vocab, layer.outFeatures());
        assertTrue(layer.lookup() && layer.bytes() > 0, layer.toString());
        assertTrue(g.initializer("wte") == null, "the float table leaves the graph");
        assertTrue(QuantizedLinears.hasQuantizedWeights(m) && QuantizedLinears.usesContribOps(m));
        Map<String, Tensor> feed = Map.of("ids", Tensor.ofLongs(ids, 2, 3));
        float[] actual;
        try (CompiledGraph c = engine.compile(m)) {
            actual = c.run(feed).get("rows").toFloatArray();
        }
        float[] dequantized = BlockQuantizer.quantize(table, true, spec).dequantize(); // [vocab, k]
        assertEquals(ids.length * k, actual.length);
        for (int i = 0; i < ids.length; i++) {
            for (int j = 0; j < k; j++) {
                assertEquals(Float.floatToIntBits(dequantized[(int) ids[i] * k + j]),
                        Float.floatToIntBits(actual[i * k + j]), "row " + i + " (token " + ids[i] + "), column " + j);
            }
        }
        QuantizedLinears.dequantize(m, name -> true);
        assertEquals(List.of("Gather"), g.nodes().stream().map(n -> n.opType()).toList());
        float[] restored;
        try (CompiledGraph c = engine.compile(m)) {
            restored = c.run(feed).get("rows").toFloatArray();
        }
        assertEquals(java.util.Arrays.toString(actual), java.util.Arrays.toString(restored));
    }

    /** A table shared with a tied head quantized along the same axis is looked up through the head's forward copy. */
    @Test
    void aTiedHeadsQuantizedCopyServesTheLookup() {
        QuantSpec spec = new QuantSpec(4, 32, true, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_NBITS);
        int vocab = 40;
        int k = 64;
        Random r = new Random(5);
        Tensor table = Tensor.ofFloats(random(r, vocab * k, 0.05), vocab, k);
        Graph g = new Graph("tied");
        GraphBuilder b = new GraphBuilder(g);
        Value hidden = b.gather(b.initializer("wte", table), b.input("ids", TensorType.of(DataType.INT64, 1, 4)), 0);
        Value head = b.initializer("lm_head.weight", table);
        b.output(b.gemm(b.flatten(hidden, 2), head, null, 1f, 1f, false, true), "logits");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.Layer headLayer = QuantizedLinears.quantize(m, List.of("lm_head.weight"), spec, false)
                .layers().get(0);
        long before = g.initializers().size();
        QuantizedLinears.Layer lookup = QuantizedLinears.quantizeEmbedding(m, "wte", spec, headLayer);
        assertEquals(0, lookup.bytes(), "no second copy of the codes");
        assertEquals(headLayer.relativeError(), lookup.relativeError());
        // the float table went, a 2-D view of the head's codes and scales came
        assertEquals(before + 1, g.initializers().size(), g.initializers().keySet().toString());
        Node gq = g.nodes().stream().filter(n -> n.opType().equals(QuantizedLinears.GATHER_OP)).findFirst()
                .orElseThrow();
        assertTrue(g.initializer(gq.input(0).name()).data() == g.initializer("lm_head.weight.qweight").data(),
                "the lookup reads the head's codes");
        Map<String, Tensor> feed = Map.of("ids", Tensor.ofLongs(new long[] {3, 39, 0, 3}, 1, 4));
        try (CompiledGraph c = engine.compile(m)) {
            assertEquals(4L * vocab, c.run(feed).get("logits").elementCount());
        }
    }

    /**
     * {@code compute: int8} runs in int8 only when ONNX Runtime pre-packs the weight: unpacked, MatMulNBits
     * dequantizes it and multiplies in float32 whatever its accuracy level. So sessions with MatMulNBits pre-pack by
     * default ({@link EngineOptions#prepackQuantized()}): their product carries the int8 rounding of the activations
     * (well above float32 summation noise, within about 1%), while without pre-packing it is float32-exact.
     */
    @Test
    void int8ComputeRunsInInt8BecauseQuantizedSessionsPrePack() {
        int k = 256;
        int n = 64;
        int rows = 32;
        QuantSpec spec = new QuantSpec(4, 32, true, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_NBITS);
        Random r = new Random(21);
        float[] x = random(r, rows * k, 1);
        Tensor w = Tensor.ofFloats(random(r, k * n, 0.05), k, n);
        Graph g = new Graph("int8");
        GraphBuilder b = new GraphBuilder(g);
        // x is a graph input: a constant x would let ORT fold the product at session creation
        b.output(b.matMul(b.input("x", TensorType.of(DataType.FLOAT, rows, k)), b.initializer("W", w)), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.quantize(m, List.of("W"), spec, false);
        float[] wq = BlockQuantizer.quantize(w, false, spec).dequantize(); // [n, k]
        double[] expected = new double[rows * n];
        for (int row = 0; row < rows; row++) {
            for (int o = 0; o < n; o++) {
                for (int i = 0; i < k; i++) {
                    expected[row * n + o] += (double) x[row * k + i] * wq[o * k + i];
                }
            }
        }
        Map<String, Tensor> feed = Map.of("x", Tensor.ofFloats(x, rows, k));
        assertTrue(engine.options().prepackQuantized(), "quantized sessions pre-pack by default");
        double packed;
        try (CompiledGraph c = engine.compile(m)) {
            packed = relativeError(expected, c.run(feed).get("y").toFloatArray());
        }
        double unpacked;
        try (OrtEngine lean = new OrtEngine(engine.options().withPrepackQuantized(false));
                CompiledGraph c = lean.compile(m)) {
            unpacked = relativeError(expected, c.run(feed).get("y").toFloatArray());
        }
        assertTrue(packed > 1e-4 && packed < 2e-2, "pre-packed int8 product: relative error " + packed);
        assertTrue(unpacked < 1e-5, "unpacked product (float32): relative error " + unpacked);
    }

    /**
     * Kernel matmul_integer: ONNX Runtime's int8 GEMM through the model's DynamicInt8MatMul function computes exactly
     * the arithmetic a Java emulation spells out (per-row scale max|x|/127, codes rounded half-to-even, integer dot
     * products, then the scales), forward and through the gradient rule over the transposed codes; both stay within
     * about 1% of the float product with Ŵ. Both weight layouts, and a 3-D input for MatMul.
     */
    @ParameterizedTest
    @CsvSource({"false, 96, 40, signed", "true, 64, 24, signed", "false, 192, 17, signed", "true, 40, 72, signed",
            "false, 96, 40, unsigned", "true, 40, 72, unsigned"})
    void int8GemmComputesTheEmulatedIntegerArithmetic(boolean linearLayout, int k, int n, String codes) {
        System.setProperty(IntegerLinears.CODES_PROPERTY, codes);
        try {
            emulatedIntegerArithmetic(linearLayout, k, n, codes);
        } finally {
            System.clearProperty(IntegerLinears.CODES_PROPERTY);
        }
    }

    private static void emulatedIntegerArithmetic(boolean linearLayout, int k, int n, String codes) {
        QuantSpec spec = new QuantSpec(8, 64, true, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_INTEGER);
        Random r = new Random(k * 31L + n);
        float[] x = random(r, ROWS * k, 1);
        x[5] = 0; // a row with a zero keeps it exactly
        for (int i = 0; i < k; i++) {
            x[k + i] *= 1e-3f; // a row a thousand times smaller keeps its own precision
        }
        float[] c = random(r, ROWS * n, 1);
        float[] wv = random(r, k * n, 0.05);
        Linear lin = linear(linearLayout, x, c, wv, k, n);
        assertEquals(1, QuantizedLinears.quantize(lin.model(), List.of("W"), spec, true).layers().size());
        assertTrue(QuantizedLinears.usesContribOps(lin.model()));
        assertEquals(1L, lin.model().opsets().get(IntegerLinears.DOMAIN));
        assertTrue(lin.graph().initializer("W") == null, "the float weight left the graph");
        assertEquals(codes.equals("signed") ? DataType.INT8 : DataType.UINT8,
                lin.graph().initializer("W.qweight").dataType(), "codes stored " + codes);
        Map<String, Tensor> out = runWithInputGradient(lin);
        ChannelQuantizer.Quantized q = ChannelQuantizer.quantize(lin.w(), linearLayout);
        byte[] qcodes = new byte[n * k]; // [n, k]
        q.codes().buffer().get(qcodes);
        float[] scales = q.scales().toFloatArray();
        float[] wq = q.dequantize();
        double[] yEmulated = new double[ROWS * n];
        double[] yFloat = new double[ROWS * n];
        for (int row = 0; row < ROWS; row++) {
            float[] xRow = java.util.Arrays.copyOfRange(x, row * k, row * k + k);
            float rowScale = rowScale(xRow);
            int[] xq = rowCodes(xRow, rowScale);
            for (int o = 0; o < n; o++) {
                long acc = 0;
                for (int i = 0; i < k; i++) {
                    acc += (long) xq[i] * qcodes[o * k + i];
                    yFloat[row * n + o] += (double) xRow[i] * wq[o * k + i];
                }
                yEmulated[row * n + o] = (double) acc * scales[o] * rowScale;
            }
        }
        double[] dxEmulated = new double[ROWS * k];
        double[] dxFloat = new double[ROWS * k];
        for (int row = 0; row < ROWS; row++) {
            float[] scaled = new float[n];
            for (int o = 0; o < n; o++) {
                scaled[o] = c[row * n + o] * scales[o];
            }
            float rowScale = rowScale(scaled);
            int[] cq = rowCodes(scaled, rowScale);
            for (int i = 0; i < k; i++) {
                long acc = 0;
                for (int o = 0; o < n; o++) {
                    acc += (long) cq[o] * qcodes[o * k + i];
                    dxFloat[row * k + i] += (double) c[row * n + o] * wq[o * k + i];
                }
                dxEmulated[row * k + i] = (double) acc * rowScale;
            }
        }
        float[] yOrt = out.get("y").toFloatArray();
        float[] dxOrt = out.get("dx").toFloatArray();
        assertClose(yEmulated, yOrt, 1e-6, "y against the emulation");
        assertClose(dxEmulated, dxOrt, 1e-6, "dx against the emulation");
        assertClose(yFloat, yOrt, 1.5e-2, "y against x · Ŵ");
        assertClose(dxFloat, dxOrt, 1.5e-2, "dx against dy · Ŵᵀ");
        for (int o = 0; o < n; o++) {
            assertEquals(0, (float) yEmulated[n + o] - yOrt[n + o], 1e-6 * Math.abs(yEmulated[n + o]) + 1e-12,
                    "the small row " + o);
        }
    }

    /**
     * The model's function is written for the model's opset (ReduceMax took its axes as an attribute before 18 and as
     * an input since), and an empty input (a chunked head's empty chunk) gives an empty output: ONNX Runtime's TopK
     * crashed the process on one, and its ReduceMax returns the input's shape for one.
     */
    @ParameterizedTest
    @CsvSource({"17", "20", "21"})
    void int8GemmRunsAtEveryOpsetAndOnEmptyInputs(int opset) {
        int k = 64;
        int n = 32;
        Random r = new Random(opset);
        Graph g = new Graph("opset" + opset);
        GraphBuilder b = new GraphBuilder(g, opset);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "rows", (long) k));
        b.output(b.matMul(x, b.initializer("W", Tensor.ofFloats(random(r, k * n, 0.05), k, n))), "y");
        Model m = new Model(g, opset);
        QuantizedLinears.quantize(m, List.of("W"), new QuantSpec(8, 64, true, QuantSpec.Compute.INT8,
                QuantSpec.Kernel.MATMUL_INTEGER), false);
        try (CompiledGraph c = engine.compile(m)) {
            float[] xv = random(r, 3 * k, 1);
            float[] y = c.run(Map.of("x", Tensor.ofFloats(xv, 3, k))).get("y").toFloatArray();
            assertEquals(3 * n, y.length);
            assertTrue(y[0] != 0, "a product was computed");
            Tensor empty = c.run(Map.of("x", Tensor.ofFloats(new float[0], 0, k))).get("y");
            assertEquals(List.of(0L, (long) n), java.util.Arrays.stream(empty.shape()).boxed().toList());
        }
    }

    /**
     * A model quantized with int8 codes (on a CPU with VNNI) and run where only uint8 codes are exact gets them
     * converted when compiled, in a copy: the same integers, so the same outputs bit for bit.
     */
    @Test
    void int8CodesMoveToACpuWithoutVnni() {
        int k = 64;
        int n = 24;
        Random r = new Random(8);
        Graph g = new Graph("moved");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, ROWS, k));
        b.output(b.matMul(x, b.initializer("W", Tensor.ofFloats(random(r, k * n, 0.05), k, n))), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        Map<String, Tensor> feed = Map.of("x", Tensor.ofFloats(random(r, ROWS * k, 1), ROWS, k));
        float[] signed;
        float[] moved;
        try {
            System.setProperty(IntegerLinears.CODES_PROPERTY, "signed");
            QuantizedLinears.quantize(m, List.of("W"), new QuantSpec(8, 64, true, QuantSpec.Compute.INT8,
                    QuantSpec.Kernel.MATMUL_INTEGER), false);
            assertEquals(DataType.INT8, g.initializer("W.qweight").dataType());
            assertTrue(IntegerLinears.forThisCpu(m) == m, "nothing to convert where int8 codes are exact");
            try (CompiledGraph c = engine.compile(m)) {
                signed = c.run(feed).get("y").toFloatArray();
            }
            System.setProperty(IntegerLinears.CODES_PROPERTY, "unsigned");
            Model converted = IntegerLinears.forThisCpu(m);
            assertEquals(DataType.UINT8, converted.graph().initializer("W.qweight").dataType());
            assertEquals(DataType.INT8, g.initializer("W.qweight").dataType(), "the caller's model is untouched");
            try (CompiledGraph c = engine.compile(m)) {
                moved = c.run(feed).get("y").toFloatArray();
            }
        } finally {
            System.clearProperty(IntegerLinears.CODES_PROPERTY);
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(signed, moved);
    }

    /** The emulated row scale: float max|v| / 127 (the model multiplies by the float 1/127), at least 1e-30. */
    private static float rowScale(float[] v) {
        float max = 0;
        for (float f : v) {
            max = Math.max(max, Math.abs(f));
        }
        return Math.max(max * (1f / 127), 1e-30f);
    }

    private static int[] rowCodes(float[] v, float scale) {
        int[] q = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            q[i] = (int) Math.max(-128, Math.min(127, Math.rint(v[i] / scale)));
        }
        return q;
    }

    /**
     * An exported kernel matmul_integer model turns back into float MatMul/Gemm over Ŵ under the weight's name: the
     * same products in float, and neither the function nor its opset is left.
     */
    @ParameterizedTest
    @CsvSource({"false, signed", "true, signed", "true, unsigned"})
    void int8GemmDequantizesForExport(boolean linearLayout, String codes) {
        System.setProperty(IntegerLinears.CODES_PROPERTY, codes);
        try {
            dequantizesForExport(linearLayout);
        } finally {
            System.clearProperty(IntegerLinears.CODES_PROPERTY);
        }
    }

    private static void dequantizesForExport(boolean linearLayout) {
        int k = 64;
        int n = 24;
        Random r = new Random(5);
        float[] wv = random(r, k * n, 0.05);
        Tensor w = linearLayout ? Tensor.ofFloats(wv, n, k) : Tensor.ofFloats(wv, k, n);
        Graph g = new Graph("export");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, ROWS, k));
        Value wValue = b.initializer("W", w);
        b.output(linearLayout ? b.gemm(x, wValue, null, 1f, 1f, false, true) : b.matMul(x, wValue), "y");
        Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
        QuantizedLinears.quantize(m, List.of("W"), new QuantSpec(8, 64, true, QuantSpec.Compute.INT8,
                QuantSpec.Kernel.MATMUL_INTEGER), false);
        assertEquals(List.of("W"), QuantizedLinears.dequantize(m, name -> linearLayout));
        assertTrue(!QuantizedLinears.hasQuantizedWeights(m) && !QuantizedLinears.usesContribOps(m));
        assertTrue(!m.opsets().containsKey(IntegerLinears.DOMAIN));
        assertTrue(!(m.residual() instanceof dev.pet.onnx.proto.OnnxProto.ModelProto p)
                || p.getFunctionsCount() == 0, "the function definition is dropped");
        float[] expected = ChannelQuantizer.quantize(w, linearLayout).dequantize(); // [n, k]
        float[] restored = g.initializer("W").toFloatArray();
        for (int o = 0; o < n; o++) {
            for (int i = 0; i < k; i++) {
                assertEquals(expected[o * k + i], restored[linearLayout ? o * k + i : i * n + o], 0f);
            }
        }
        float[] xv = random(r, ROWS * k, 1);
        try (CompiledGraph c = engine.compile(m)) {
            float[] y = c.run(Map.of("x", Tensor.ofFloats(xv, ROWS, k))).get("y").toFloatArray();
            for (int row = 0; row < ROWS; row++) {
                for (int o = 0; o < n; o++) {
                    double want = 0;
                    for (int i = 0; i < k; i++) {
                        want += (double) xv[row * k + i] * expected[o * k + i];
                    }
                    assertEquals(want, y[row * n + o], 1e-4);
                }
            }
        }
    }

    private static double relativeError(double[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            num += (expected[i] - actual[i]) * (expected[i] - actual[i]);
            den += expected[i] * expected[i];
        }
        return Math.sqrt(num / den);
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
