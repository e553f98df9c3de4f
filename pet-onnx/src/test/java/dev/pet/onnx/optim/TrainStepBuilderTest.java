package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Optimizer graphs against plain-Java references of the same update rules. The model is loss = Σ (w·x − y)² with a
 * trainable w [3] and a frozen scale; gradients are 2(w·x − y)·x·scale, computed in the reference by hand.
 */
class TrainStepBuilderTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();
    private static final float[] W0 = {0.5f, -1.0f, 2.0f};
    private static final float[][] X = {{1.0f, 2.0f, -1.0f}, {0.5f, -0.3f, 0.8f}, {-1.2f, 0.7f, 0.4f}};
    private static final float[] Y = {0.3f, -0.2f, 0.9f};
    private static final float SCALE = 1.5f;

    private static Model forward() {
        Graph g = new Graph("quadratic");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 3));
        Value y = b.input("y", TensorType.of(DataType.FLOAT, 3));
        Value w = b.initializer("w", Tensor.ofFloats(W0, 3));
        Value scale = b.initializer("scale", Tensor.scalar(SCALE));
        Value d = b.sub(b.mul(w, x), y);
        b.output(b.mul(b.reduceSum(b.mul(d, d), new long[0], false), scale), "loss");
        return new Model(g, GraphBuilder.DEFAULT_OPSET);
    }

    private static double[] grad(double[] w, int step) {
        float[] x = X[step % 3];
        double[] g = new double[3];
        for (int i = 0; i < 3; i++) {
            g[i] = 2 * (w[i] * x[i] - Y[i]) * x[i] * SCALE;
        }
        return g;
    }

    /** Runs a train-step model for a number of steps in ORT, returning its final state. */
    private static Map<String, float[]> run(TrainStepModel m, int steps, double lr, int accumulation)
            throws Exception {
        Map<String, float[]> state = new HashMap<>();
        m.initialState().forEach((k, v) -> state.put(k, v.toFloatArray()));
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(m.model()), new OrtSession.SessionOptions())) {
            int optimizerStep = 0;
            for (int i = 0; i < steps; i++) {
                boolean apply = (i + 1) % accumulation == 0;
                Map<String, OnnxTensor> feeds = new HashMap<>();
                feeds.put("x", OnnxTensor.createTensor(ENV, FloatBuffer.wrap(X[i % 3]), new long[] {3}));
                feeds.put("y", OnnxTensor.createTensor(ENV, FloatBuffer.wrap(Y), new long[] {3}));
                feeds.put(TrainStepBuilder.LR, OnnxTensor.createTensor(ENV, (float) lr));
                feeds.put(TrainStepBuilder.STEP, OnnxTensor.createTensor(ENV, (float) (optimizerStep + 1)));
                if (m.feeds().contains(TrainStepBuilder.APPLY)) {
                    feeds.put(TrainStepBuilder.APPLY, OnnxTensor.createTensor(ENV, apply));
                }
                for (Map.Entry<String, float[]> e : state.entrySet()) {
                    if (e.getKey().startsWith("#")) {
                        continue;
                    }
                    long[] shape = m.initialState().get(e.getKey()).shape();
                    feeds.put(e.getKey(), OnnxTensor.createTensor(ENV, FloatBuffer.wrap(e.getValue()), shape));
                }
                try (OrtSession.Result r = s.run(feeds)) {
                    for (Map.Entry<String, String> bind : m.stateBindings().entrySet()) {
                        FloatBuffer fb = ((OnnxTensor) r.get(bind.getValue()).get()).getFloatBuffer();
                        float[] v = new float[fb.remaining()];
                        fb.get(v);
                        state.put(bind.getKey(), v);
                    }
                    FloatBuffer norm = ((OnnxTensor) r.get(TrainStepBuilder.GRAD_NORM).get()).getFloatBuffer();
                    state.put("#norm", new float[] {norm.get(0)});
                } finally {
                    feeds.values().forEach(OnnxTensor::close);
                }
                if (apply) {
                    optimizerStep++;
                }
            }
        }
        return state;
    }

    private static void assertClose(double[] expected, float[] actual, double tol, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol, what + "[" + i + "]");
        }
    }

    @Test
    void adamWMatchesTorchSemanticsAfterThreeSteps() throws Exception {
        double lr = 0.1;
        double wd = 0.01;
        OptimizerSpec spec = OptimizerSpec.adamW().withWeightDecay(wd, null);
        Map<String, float[]> got = run(TrainStepBuilder.build(forward(), "loss", List.of("w"), spec), 3, lr, 1);

        double[] w = {W0[0], W0[1], W0[2]};
        double[] m = new double[3];
        double[] v = new double[3];
        for (int t = 1; t <= 3; t++) {
            double[] g = grad(w, t - 1);
            for (int i = 0; i < 3; i++) {
                w[i] *= 1 - lr * wd;
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                double mhat = m[i] / (1 - Math.pow(0.9, t));
                double vhat = v[i] / (1 - Math.pow(0.999, t));
                w[i] -= lr * mhat / (Math.sqrt(vhat) + 1e-8);
            }
        }
        // float32 arithmetic on values of order 1-10: 1e-6 relative is a few ulps.
        assertClose(w, got.get("w"), 1e-6, "w");
        assertClose(m, got.get("m/w"), 1e-5, "m");
        assertClose(v, got.get("v/w"), 1e-4, "v");
    }

    @Test
    void adamWeightDecayHasNoBiasCorrection() throws Exception {
        double lr = 0.05;
        OptimizerSpec spec = new OptimizerSpec(OptimizerSpec.Kind.ADAM_WEIGHT_DECAY, 0.9, 0.999, 1e-6, 0.1, null,
                0, false, 1);
        Map<String, float[]> got = run(TrainStepBuilder.build(forward(), "loss", List.of("w"), spec), 3, lr, 1);
        double[] w = {W0[0], W0[1], W0[2]};
        double[] m = new double[3];
        double[] v = new double[3];
        for (int t = 1; t <= 3; t++) {
            double[] g = grad(w, t - 1);
            for (int i = 0; i < 3; i++) {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                double update = m[i] / (Math.sqrt(v[i]) + 1e-6) + 0.1 * w[i];
                w[i] -= lr * update;
            }
        }
        assertClose(w, got.get("w"), 1e-5, "w");
    }

    @Test
    void sgdWithMomentumAndNesterov() throws Exception {
        for (boolean nesterov : new boolean[] {false, true}) {
            double lr = 0.01;
            OptimizerSpec spec = new OptimizerSpec(OptimizerSpec.Kind.SGD, 0.9, 0.999, 0, 0.05, null, 0,
                    nesterov, 1);
            Map<String, float[]> got = run(TrainStepBuilder.build(forward(), "loss", List.of("w"), spec), 4, lr, 1);
            double[] w = {W0[0], W0[1], W0[2]};
            double[] buf = new double[3];
            for (int t = 1; t <= 4; t++) {
                double[] g = grad(w, t - 1);
                for (int i = 0; i < 3; i++) {
                    double d = g[i] + 0.05 * w[i];
                    buf[i] = 0.9 * buf[i] + d;
                    w[i] -= lr * (nesterov ? d + 0.9 * buf[i] : buf[i]);
                }
            }
            assertClose(w, got.get("w"), 1e-5, "w (nesterov=" + nesterov + ")");
        }
    }

    @Test
    void clipsByGlobalNormAndReportsTheNormBeforeClipping() throws Exception {
        double lr = 0.1;
        OptimizerSpec spec = new OptimizerSpec(OptimizerSpec.Kind.SGD, 0, 0.999, 0, 0, null, 0.5, false, 1);
        Map<String, float[]> got = run(TrainStepBuilder.build(forward(), "loss", List.of("w"), spec), 1, lr, 1);
        double[] w = {W0[0], W0[1], W0[2]};
        double[] g = grad(w, 0);
        double norm = Math.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
        double coef = Math.min(1, 0.5 / (norm + 1e-6));
        assertTrue(coef < 1, "the case must actually clip");
        for (int i = 0; i < 3; i++) {
            w[i] -= lr * g[i] * coef;
        }
        assertClose(w, got.get("w"), 1e-6, "w");
        assertEquals(norm, got.get("#norm")[0], 1e-4 * norm);
    }

    @Test
    void accumulatesGradientsOverMicroBatches() throws Exception {
        double lr = 0.1;
        OptimizerSpec spec = new OptimizerSpec(OptimizerSpec.Kind.SGD, 0, 0.999, 0, 0, null, 0, false, 3);
        TrainStepModel m = TrainStepBuilder.build(forward(), "loss", List.of("w"), spec);
        Map<String, float[]> got = run(m, 6, lr, 3);
        double[] w = {W0[0], W0[1], W0[2]};
        for (int step = 0; step < 2; step++) {
            double[] sum = new double[3];
            for (int micro = 0; micro < 3; micro++) {
                double[] g = grad(w, step * 3 + micro);
                for (int i = 0; i < 3; i++) {
                    sum[i] += g[i];
                }
            }
            for (int i = 0; i < 3; i++) {
                w[i] -= lr * sum[i] / 3;
            }
        }
        assertClose(w, got.get("w"), 1e-6, "w");
        assertArrayEquals(new float[3], got.get("acc/w"), "the accumulator is reset after applying");
    }

    @Test
    void backwardValuesKeepTheirElementTypesButNotTheirShapes() throws Exception {
        Model forward = forward();
        java.util.Set<String> forwardValues = new java.util.HashSet<>();
        forward.graph().nodes().forEach(n -> n.outputs().forEach(o -> forwardValues.add(o.name())));
        TrainStepModel m = TrainStepBuilder.build(forward, "loss", List.of("w"), OptimizerSpec.adamW());
        Graph g = m.model().graph();
        java.util.Set<Value> outputs = new java.util.HashSet<>(g.outputs());
        int backward = 0;
        for (var n : g.nodes()) {
            for (Value o : n.outputs()) {
                if (forwardValues.contains(o.name()) || outputs.contains(o)) {
                    assertTrue(o.type().hasRank(), o.name() + " keeps its shape: " + o.type());
                } else {
                    backward++;
                    assertFalse(o.type().hasRank(), o.name() + " of " + n.describe() + " has a shape: " + o.type());
                    assertNotNull(o.type().dataType(), o.name() + " keeps its element type");
                }
            }
        }
        assertTrue(backward > 10, "backward and optimizer values: " + backward);
        // What ONNX Runtime's planner sees: no shape in the serialised graph for any of them.
        var proto = dev.pet.onnx.proto.OnnxProto.ModelProto.parseFrom(OnnxSerializer.toBytes(m.model()));
        int shaped = 0;
        for (var vi : proto.getGraph().getValueInfoList()) {
            boolean hasShape = vi.getType().getTensorType().hasShape();
            if (forwardValues.contains(vi.getName())) {
                shaped++;
                assertTrue(hasShape, vi.getName());
            } else {
                assertFalse(hasShape, vi.getName() + " is serialised with a shape");
            }
        }
        assertTrue(shaped > 0, "forward values keep their shapes in the serialised graph");
        assertEquals(List.of(3L), g.value("w").type().dims().stream().map(d -> d.value()).toList());
    }

    @Test
    void frozenWeightsStayConstantsAndGetNoGradient() {
        TrainStepModel m = TrainStepBuilder.build(forward(), "loss", List.of("w"), OptimizerSpec.adamW());
        Graph g = m.model().graph();
        assertTrue(g.initializer("scale") != null, "the frozen scale is still an initializer");
        assertTrue(g.value("w").isGraphInput());
        assertFalse(m.stateBindings().containsKey("scale"));
        assertEquals(List.of("w", "m/w", "v/w"), List.copyOf(m.stateBindings().keySet()));
        OnnxException e = assertThrows(OnnxException.class,
                () -> TrainStepBuilder.build(forward(), "loss", List.of("nope"), OptimizerSpec.adamW()));
        assertTrue(e.getMessage().contains("'nope'"), e.getMessage());
    }

    @Test
    void trainingARegressionDrivesTheLossBelowTenPercent() throws Exception {
        // y = tanh(x W1) W2 fitted to a fixed random target on one repeated batch.
        Random r = new Random(5);
        Graph g = new Graph("mlp");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 8, 4));
        Value y = b.input("y", TensorType.of(DataType.FLOAT, 8, 2));
        Value w1 = b.initializer("w1", Tensor.ofFloats(gaussian(r, 16, 0.5), 4, 4));
        Value w2 = b.initializer("w2", Tensor.ofFloats(gaussian(r, 8, 0.5), 4, 2));
        Value d = b.sub(b.matMul(b.tanh(b.matMul(x, w1)), w2), y);
        b.output(b.reduceMean(b.mul(d, d), new long[0], false), "loss");
        TrainStepModel m = TrainStepBuilder.build(new Model(g, 17), "loss", List.of("w1", "w2"),
                OptimizerSpec.adamW().withWeightDecay(0, null));
        float[] xs = gaussian(r, 32, 1);
        float[] ys = gaussian(r, 16, 0.5);
        Map<String, float[]> state = new HashMap<>();
        m.initialState().forEach((k, v) -> state.put(k, v.toFloatArray()));
        double first = Double.NaN;
        double last = Double.NaN;
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(m.model()), new OrtSession.SessionOptions())) {
            for (int step = 1; step <= 300; step++) {
                Map<String, OnnxTensor> feeds = new HashMap<>();
                feeds.put("x", OnnxTensor.createTensor(ENV, FloatBuffer.wrap(xs), new long[] {8, 4}));
                feeds.put("y", OnnxTensor.createTensor(ENV, FloatBuffer.wrap(ys), new long[] {8, 2}));
                feeds.put(TrainStepBuilder.LR, OnnxTensor.createTensor(ENV, 0.03f));
                feeds.put(TrainStepBuilder.STEP, OnnxTensor.createTensor(ENV, (float) step));
                for (Map.Entry<String, float[]> e : state.entrySet()) {
                    feeds.put(e.getKey(), OnnxTensor.createTensor(ENV, FloatBuffer.wrap(e.getValue()),
                            m.initialState().get(e.getKey()).shape()));
                }
                try (OrtSession.Result res = s.run(feeds)) {
                    last = ((OnnxTensor) res.get("loss").get()).getFloatBuffer().get(0);
                    if (step == 1) {
                        first = last;
                    }
                    for (Map.Entry<String, String> bind : m.stateBindings().entrySet()) {
                        FloatBuffer fb = ((OnnxTensor) res.get(bind.getValue()).get()).getFloatBuffer();
                        float[] v = new float[fb.remaining()];
                        fb.get(v);
                        state.put(bind.getKey(), v);
                    }
                } finally {
                    feeds.values().forEach(OnnxTensor::close);
                }
            }
        }
        assertTrue(last < 0.1 * first, "loss " + first + " -> " + last);
    }

    @Test
    void seededDropoutIsReproducibleAndDropsTheRequestedFraction() throws Exception {
        Graph g = new Graph("dropout");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 100, 100));
        Value seed = b.input("seed", TensorType.of(DataType.INT64));
        var node = b.dropout(x, b.constant(0.3f), b.constant(Tensor.ofBools(new boolean[] {true})));
        b.output(node.output(0), "y");
        assertEquals(1, SeededDropout.rewrite(g, seed, 17));
        assertTrue(g.nodes().stream().noneMatch(n -> n.opType().equals("Dropout")));
        float[] ones = new float[10_000];
        java.util.Arrays.fill(ones, 1f);
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(new Model(g, 17)),
                new OrtSession.SessionOptions())) {
            float[] a = runDropout(s, ones, 1);
            float[] a2 = runDropout(s, ones, 1);
            float[] c = runDropout(s, ones, 2);
            assertArrayEquals(a, a2, "same seed, same mask");
            assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(c), "another seed, another mask");
            int kept = 0;
            for (float v : a) {
                if (v != 0) {
                    kept++;
                    assertEquals(1 / 0.7f, v, 1e-6, "kept elements are scaled by 1/(1-p)");
                }
            }
            // Binomial(10000, 0.7): standard deviation 46, so ±300 is over six sigma.
            assertEquals(7000, kept, 300);
        }
    }

    private static float[] runDropout(OrtSession s, float[] x, long seed) throws Exception {
        try (OnnxTensor xt = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(x), new long[] {100, 100});
                OnnxTensor st = OnnxTensor.createTensor(ENV, seed);
                OrtSession.Result r = s.run(Map.of("x", xt, "seed", st))) {
            FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
            float[] out = new float[fb.remaining()];
            fb.get(out);
            return out;
        }
    }

    private static float[] gaussian(Random r, int n, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * std);
        }
        return a;
    }
}
