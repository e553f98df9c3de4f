package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.Ort;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Optimizer graphs against a plain-Java reference: linear regression pred = (x·W + bias) ⊙ s (s frozen), loss
 * = mean((pred − y)²), float64 parameters, three steps with different batches and learning rates. The reference
 * computes the same gradients by hand and applies the textbook update; 1e-9 absolute tolerance (float64 arithmetic
 * in a different order, values of order 1).
 */
class OptimizerTest {
    private static final int N = 4;
    private static final int IN = 3;
    private static final int OUT = 2;
    private static final double TOL = 1e-9;
    private static final double[] S = {1.5, -0.5};
    private static final float[] LRS = {0.05f, 0.03f, 0.02f};

    static Model forward(double[] w, double[] bias) {
        Graph g = new Graph("regression");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.symbolic(DataType.DOUBLE, "n", (long) IN));
        Value y = b.input("y", TensorType.symbolic(DataType.DOUBLE, "n", (long) OUT));
        Value pred = b.mul(b.add(b.matMul(x, b.initializer("W", Tensor.ofDoubles(w, IN, OUT))),
                b.initializer("out.bias", Tensor.ofDoubles(bias, OUT))), b.initializer("s", Tensor.ofDoubles(S, OUT)));
        Value r = b.sub(pred, y);
        b.output(b.op("ReduceMean", List.of(b.mul(r, r)), Attribute.of("keepdims", 0L)), "mse");
        return new Model(g, 17);
    }

    /** Batches, initial weights and the reference state. */
    static final class Ref {
        final double[][] xs = new double[3][];
        final double[][] ys = new double[3][];
        double[] w;
        double[] bias;

        Ref(long seed) {
            Random r = new Random(seed);
            for (int k = 0; k < 3; k++) {
                xs[k] = gauss(r, N * IN);
                ys[k] = gauss(r, N * OUT);
            }
            w = gauss(r, IN * OUT);
            bias = gauss(r, OUT);
        }

        /** {dW, dbias} of the loss at the current weights for batch k. */
        double[][] grads(double[] x, double[] y) {
            double[] gw = new double[IN * OUT];
            double[] gb = new double[OUT];
            for (int n = 0; n < N; n++) {
                for (int o = 0; o < OUT; o++) {
                    double z = bias[o];
                    for (int i = 0; i < IN; i++) {
                        z += x[n * IN + i] * w[i * OUT + o];
                    }
                    double dz = 2 * (z * S[o] - y[n * OUT + o]) / (N * OUT) * S[o];
                    gb[o] += dz;
                    for (int i = 0; i < IN; i++) {
                        gw[i * OUT + o] += x[n * IN + i] * dz;
                    }
                }
            }
            return new double[][] {gw, gb};
        }
    }

    static double[] gauss(Random r, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = r.nextGaussian();
        }
        return d;
    }

    /** Runs the train graphs in ONNX Runtime, carrying trainables and state between steps. */
    static final class Runner implements AutoCloseable {
        final TrainGraphs graphs;
        final Ort step;
        final Ort acc;
        final Ort apply;
        final Map<String, double[]> values = new LinkedHashMap<>();
        final Map<String, long[]> shapes = new HashMap<>();
        final Map<String, DataType> types = new HashMap<>();
        double lastLoss;
        double lastNorm;

        Runner(TrainGraphs graphs) {
            this.graphs = graphs;
            step = graphs.step() == null ? null : new Ort(graphs.step());
            acc = graphs.accumulate() == null ? null : new Ort(graphs.accumulate());
            apply = graphs.apply() == null ? null : new Ort(graphs.apply());
            for (String t : graphs.trainables()) {
                Tensor init = graphs.initialValues().get(t);
                values.put(t, init.toDoubleArray());
                shapes.put(t, init.shape());
                types.put(t, init.dataType());
                for (String s : graphs.stateNames()) {
                    if (s.endsWith("." + t)) {
                        values.put(s, new double[init.toDoubleArray().length]);
                        shapes.put(s, init.shape());
                        types.put(s, init.dataType());
                    }
                }
                for (String a : graphs.accumulators()) {
                    if (a.endsWith("." + t)) {
                        values.put(a, new double[init.toDoubleArray().length]);
                        shapes.put(a, init.shape());
                        types.put(a, init.dataType());
                    }
                }
            }
        }

        private Map<String, Ort.Feed> feeds(Map<String, Ort.Feed> batch, List<String> names) {
            Map<String, Ort.Feed> f = new HashMap<>(batch);
            for (String n : names) {
                f.put(n, feed(types.get(n), values.get(n), shapes.get(n)));
            }
            return f;
        }

        private void take(Map<String, double[]> out, List<String> names) {
            for (String n : names) {
                double[] v = out.get(graphs.updated().get(n));
                assertNotNull(v, "output for " + n);
                values.put(n, v);
            }
        }

        void step(Map<String, Ort.Feed> batch, long t, float lr) {
            Map<String, Ort.Feed> f = feeds(batch, concat(graphs.trainables(), graphs.stateNames()));
            f.put(TrainStepGraph.STEP, Ort.Feed.longs(new long[] {t}));
            f.put(TrainStepGraph.LR, Ort.Feed.floats(new float[] {lr}));
            Map<String, double[]> out = step.run(f);
            lastLoss = out.get(TrainStepGraph.LOSS)[0];
            lastNorm = out.get(TrainStepGraph.GRAD_NORM)[0];
            take(out, concat(graphs.trainables(), graphs.stateNames()));
        }

        void accumulate(Map<String, Ort.Feed> batch) {
            Map<String, double[]> out = acc.run(feeds(batch, concat(graphs.trainables(), graphs.accumulators())));
            lastLoss = out.get(TrainStepGraph.LOSS)[0];
            take(out, graphs.accumulators());
        }

        void apply(long t, float lr) {
            Map<String, Ort.Feed> f = feeds(Map.of(), concat(concat(graphs.trainables(), graphs.stateNames()),
                    graphs.accumulators()));
            f.put(TrainStepGraph.STEP, Ort.Feed.longs(new long[] {t}));
            f.put(TrainStepGraph.LR, Ort.Feed.floats(new float[] {lr}));
            Map<String, double[]> out = apply.run(f);
            lastNorm = out.get(TrainStepGraph.GRAD_NORM)[0];
            take(out, concat(graphs.trainables(), graphs.stateNames()));
            for (String a : graphs.accumulators()) {
                values.put(a, new double[values.get(a).length]);
            }
        }

        @Override
        public void close() {
            for (Ort o : new Ort[] {step, acc, apply}) {
                if (o != null) {
                    o.close();
                }
            }
        }
    }

    static Ort.Feed feed(DataType t, double[] d, long[] shape) {
        if (t == DataType.DOUBLE) {
            return Ort.Feed.doubles(d, shape);
        }
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return Ort.Feed.floats(f, shape);
    }

    static List<String> concat(List<String> a, List<String> b) {
        List<String> l = new java.util.ArrayList<>(a);
        l.addAll(b);
        return l;
    }

    static Map<String, Ort.Feed> batch(Ref ref, int k) {
        return Map.of("x", Ort.Feed.doubles(ref.xs[k], N, IN), "y", Ort.Feed.doubles(ref.ys[k], N, OUT));
    }

    /** One reference parameter update: textbook formulas of each optimizer, state in {@code st}. */
    static void referenceUpdate(OptimizerOptions o, String name, double[] p, double[] g, double[][] st, int t,
            double lr) {
        boolean decay = o.decays(name);
        for (int i = 0; i < p.length; i++) {
            switch (o.name()) {
                case "AdamW" -> {
                    if (decay) {
                        p[i] -= lr * o.weightDecay() * p[i];
                    }
                    st[0][i] = o.beta1() * st[0][i] + (1 - o.beta1()) * g[i];
                    st[1][i] = o.beta2() * st[1][i] + (1 - o.beta2()) * g[i] * g[i];
                    double mHat = st[0][i] / (1 - Math.pow(o.beta1(), t));
                    double vHat = st[1][i] / (1 - Math.pow(o.beta2(), t));
                    p[i] -= lr * mHat / (Math.sqrt(vHat) + o.eps());
                }
                case "AdamWeightDecay" -> {
                    st[0][i] = o.beta1() * st[0][i] + (1 - o.beta1()) * g[i];
                    st[1][i] = o.beta2() * st[1][i] + (1 - o.beta2()) * g[i] * g[i];
                    double u = st[0][i] / (Math.sqrt(st[1][i]) + o.eps()) + (decay ? o.weightDecay() * p[i] : 0);
                    p[i] -= lr * u;
                }
                default -> {
                    double d = g[i] + (decay ? o.weightDecay() * p[i] : 0);
                    if (o.momentum() > 0) {
                        st[0][i] = t == 1 ? d : o.momentum() * st[0][i] + d;
                        d = o.nesterov() ? d + o.momentum() * st[0][i] : st[0][i];
                    }
                    p[i] -= lr * d;
                }
            }
        }
    }

    /** Trains three steps in ORT and in Java; compares parameters, state, loss and gradient norm each step. */
    private static void checkAgainstReference(OptimizerOptions o) {
        Ref ref = new Ref(7);
        TrainGraphs graphs = TrainStepGraph.build(forward(ref.w, ref.bias), "mse", List.of("W", "out.bias"), o);
        int slots = Optimizers.create(o).stateSlots().size();
        double[][] stW = new double[Math.max(slots, 1)][IN * OUT];
        double[][] stB = new double[Math.max(slots, 1)][OUT];
        try (Runner run = new Runner(graphs)) {
            for (int k = 0; k < 3; k++) {
                double[][] g = ref.grads(ref.xs[k], ref.ys[k]);
                double norm = Math.sqrt(sumSq(g[0]) + sumSq(g[1]));
                double coef = o.maxGradNorm() > 0 ? Math.min(1, o.maxGradNorm() / (norm + 1e-6)) : 1;
                scale(g[0], coef);
                scale(g[1], coef);
                double lr = LRS[k];
                referenceUpdate(o, "W", ref.w, g[0], stW, k + 1, lr);
                referenceUpdate(o, "out.bias", ref.bias, g[1], stB, k + 1, lr);
                run.step(batch(ref, k), k + 1, LRS[k]);
                assertEquals(norm, run.lastNorm, 1e-9, "grad_norm at step " + (k + 1));
                assertClose(ref.w, run.values.get("W"), o.name() + " W after step " + (k + 1));
                assertClose(ref.bias, run.values.get("out.bias"), o.name() + " bias after step " + (k + 1));
                if (slots > 0) {
                    assertClose(stW[0], run.values.get(TrainStepGraph.STATE + Optimizers.create(o).stateSlots()
                            .get(0) + ".W"), "first state slot of W");
                }
                if (slots > 1) {
                    assertClose(stW[1], run.values.get(TrainStepGraph.STATE + "v.W"), "v of W");
                }
            }
        }
    }

    static double sumSq(double[] v) {
        double s = 0;
        for (double d : v) {
            s += d * d;
        }
        return s;
    }

    static void scale(double[] v, double c) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= c;
        }
    }

    static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], TOL, what + "[" + i + "]");
        }
    }

    @Test
    void adamWMatchesTorchFormulasAfterThreeSteps() {
        checkAgainstReference(OptimizerOptions.adamW().withWeightDecay(0.1, OptimizerOptions.BIASES_AND_NORMS));
    }

    @Test
    void adamWeightDecayHasNoBiasCorrection() {
        checkAgainstReference(OptimizerOptions.adamWeightDecay().withWeightDecay(0.05,
                OptimizerOptions.BIASES_AND_NORMS).withEps(1e-6));
    }

    @Test
    void sgdWithMomentum() {
        checkAgainstReference(OptimizerOptions.sgd().withMomentum(0.9, false));
    }

    @Test
    void sgdNesterovWithWeightDecay() {
        checkAgainstReference(OptimizerOptions.sgd().withMomentum(0.8, true)
                .withWeightDecay(0.01, OptimizerOptions.DECAY_ALL));
    }

    @Test
    void plainSgdHasNoState() {
        OptimizerOptions o = OptimizerOptions.sgd();
        assertEquals(List.of(), Optimizers.create(o).stateSlots());
        checkAgainstReference(o);
    }

    @Test
    void globalNormClippingMatchesTorchClipGradNorm() {
        checkAgainstReference(OptimizerOptions.adamW().withMaxGradNorm(0.3));
    }

    @Test
    void gradientAccumulationAveragesMicroBatches() {
        OptimizerOptions o = OptimizerOptions.adamW().withAccumulationSteps(3).withMaxGradNorm(0.5);
        Ref ref = new Ref(9);
        TrainGraphs graphs = TrainStepGraph.build(forward(ref.w, ref.bias), "mse", List.of("W", "out.bias"), o);
        assertNull(graphs.step());
        double[][] stW = new double[2][IN * OUT];
        double[][] stB = new double[2][OUT];
        try (Runner run = new Runner(graphs)) {
            for (int update = 1; update <= 2; update++) {
                double[] gw = new double[IN * OUT];
                double[] gb = new double[OUT];
                for (int k = 0; k < 3; k++) {
                    double[][] g = ref.grads(ref.xs[k], ref.ys[k]);
                    for (int i = 0; i < gw.length; i++) {
                        gw[i] += g[0][i] / 3;
                    }
                    for (int i = 0; i < gb.length; i++) {
                        gb[i] += g[1][i] / 3;
                    }
                    run.accumulate(batch(ref, k));
                }
                double norm = Math.sqrt(sumSq(gw) + sumSq(gb));
                double coef = Math.min(1, 0.5 / (norm + 1e-6));
                scale(gw, coef);
                scale(gb, coef);
                referenceUpdate(o, "W", ref.w, gw, stW, update, LRS[update]);
                referenceUpdate(o, "out.bias", ref.bias, gb, stB, update, LRS[update]);
                run.apply(update, LRS[update]);
                assertEquals(norm, run.lastNorm, 1e-9, "grad_norm of update " + update);
                assertClose(ref.w, run.values.get("W"), "W after update " + update);
                assertClose(ref.bias, run.values.get("out.bias"), "bias after update " + update);
                assertClose(stB[1], run.values.get(TrainStepGraph.STATE + "v.out.bias"), "v of bias");
            }
        }
    }

    @Test
    void frozenWeightsStayInitializersAndEvalComputesTheLossOnly() {
        Ref ref = new Ref(3);
        TrainGraphs graphs = TrainStepGraph.build(forward(ref.w, ref.bias), "mse", List.of("W"),
                OptimizerOptions.adamW());
        Graph step = graphs.step().graph();
        assertNotNull(step.initializer("s"));
        assertNotNull(step.initializer("out.bias"));
        assertNull(step.initializer("W"));
        assertTrue(step.inputs().stream().anyMatch(v -> v.name().equals("W")));
        assertEquals(List.of("x", "y"), graphs.batchInputs());
        assertEquals(List.of(TrainStepGraph.LOSS), graphs.eval().graph().outputs().stream().map(Value::name)
                .toList());
        double[][] g = ref.grads(ref.xs[0], ref.ys[0]);
        double expected = 0;
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OUT; o++) {
                double z = ref.bias[o];
                for (int i = 0; i < IN; i++) {
                    z += ref.xs[0][n * IN + i] * ref.w[i * OUT + o];
                }
                expected += Math.pow(z * S[o] - ref.ys[0][n * OUT + o], 2) / (N * OUT);
            }
        }
        assertEquals(IN * OUT, g[0].length);
        try (Ort eval = new Ort(graphs.eval())) {
            assertEquals(expected, eval.run(batch(ref, 0)).get(TrainStepGraph.LOSS)[0], 1e-12);
        }
    }

    @Test
    void rejectsUnknownOptimizersAndBadOptions() {
        OnnxException e = assertThrows(OnnxException.class, () -> OptimizerOptions.of("Adagrad"));
        assertTrue(e.getMessage().contains("Adagrad"), e.getMessage());
        e = assertThrows(OnnxException.class, () -> OptimizerOptions.adamW().withBetas(1.0, 0.999));
        assertTrue(e.getMessage().contains("beta1"), e.getMessage());
        e = assertThrows(OnnxException.class, () -> OptimizerOptions.sgd().withMomentum(0, true));
        assertTrue(e.getMessage().contains("nesterov"), e.getMessage());
        assertEquals("AdamWeightDecay", OptimizerOptions.of("adamweightdecay").name());
    }
}
