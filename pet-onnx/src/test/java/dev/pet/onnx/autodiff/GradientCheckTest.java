package dev.pet.onnx.autodiff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.DoubleBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every gradient rule against central finite differences, in float64, both sides computed by ONNX Runtime.
 *
 * <p>Each case builds y = f(inputs); the loss is sum(sin(y)), so the upstream gradient cos(y) differs per element.
 * Up to 24 coordinates per input are perturbed by ±1e-6. In float64 the central difference's truncation error is
 * O(eps²·f''') ≈ 1e-12 and its rounding error ≈ 1e-16/eps = 1e-10, so |analytic − numeric| ≤ 1e-7 + 1e-6·|numeric|
 * leaves a wide margin while any wrong rule (sign, transpose, missing broadcast reduction) misses by ≥ 1e-2.
 */
class GradientCheckTest {
    private static final double EPS = 1e-6;
    private static final Set<String> COVERED = new TreeSet<>();
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    /** An input of the case: shape, whether it is differentiated, and how its values are drawn. */
    record In(String name, long[] shape, boolean trainable, double lo, double hi) {
        static In t(String name, long... shape) {
            return new In(name, shape, true, -1.5, 1.5);
        }

        static In positive(String name, long... shape) {
            return new In(name, shape, true, 0.5, 2.0);
        }
    }

    record Case(String name, List<String> ops, int opset, List<In> inputs, Function<Ctx, Value> body,
            double tolerance, DataType dtype, double eps) {
        Case(String name, List<String> ops, int opset, List<In> inputs, Function<Ctx, Value> body, double tolerance) {
            this(name, ops, opset, inputs, body, tolerance, DataType.DOUBLE, EPS);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** Gives case bodies the builder and their inputs by name. */
    record Ctx(GraphBuilder b, Map<String, Value> in) {
        Value get(String name) {
            return in.get(name);
        }
    }

    private static Case c(String name, List<String> ops, List<In> inputs, Function<Ctx, Value> body) {
        return new Case(name, ops, 17, inputs, body, 1e-6);
    }

    static Stream<Case> cases() {
        List<Case> l = new ArrayList<>();
        l.add(c("matmul batched x matrix", List.of("MatMul"), List.of(In.t("a", 2, 3, 4), In.t("w", 4, 5)),
                x -> x.b().matMul(x.get("a"), x.get("w"))));
        l.add(c("matmul broadcast batch", List.of("MatMul"), List.of(In.t("a", 2, 1, 3, 4), In.t("w", 5, 4, 2)),
                x -> x.b().matMul(x.get("a"), x.get("w"))));
        l.add(c("matmul vector x matrix", List.of("MatMul"), List.of(In.t("a", 4), In.t("w", 4, 3)),
                x -> x.b().matMul(x.get("a"), x.get("w"))));
        l.add(c("matmul batch x vector", List.of("MatMul"), List.of(In.t("a", 2, 3, 4), In.t("w", 4)),
                x -> x.b().matMul(x.get("a"), x.get("w"))));
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                boolean tA = ta == 1;
                boolean tB = tb == 1;
                long[] as = tA ? new long[] {4, 3} : new long[] {3, 4};
                long[] bs = tB ? new long[] {5, 4} : new long[] {4, 5};
                l.add(c("gemm transA=" + ta + " transB=" + tb, List.of("Gemm"),
                        List.of(In.t("a", as), In.t("w", bs), In.t("bias", 5)),
                        x -> x.b().gemm(x.get("a"), x.get("w"), x.get("bias"), 0.7f, 1.3f, tA, tB)));
            }
        }
        l.add(c("gemm column bias", List.of("Gemm"), List.of(In.t("a", 3, 4), In.t("w", 4, 5), In.t("bias", 3, 1)),
                x -> x.b().gemm(x.get("a"), x.get("w"), x.get("bias"), 1f, 1f, false, false)));
        l.add(c("add broadcast", List.of("Add"), List.of(In.t("a", 2, 3, 4), In.t("b", 3, 1)),
                x -> x.b().add(x.get("a"), x.get("b"))));
        l.add(c("sub scalar", List.of("Sub"), List.of(In.t("a", 2, 3), In.t("b")),
                x -> x.b().sub(x.get("a"), x.get("b"))));
        l.add(c("mul broadcast both", List.of("Mul"), List.of(In.t("a", 2, 1, 4), In.t("b", 3, 1)),
                x -> x.b().mul(x.get("a"), x.get("b"))));
        l.add(c("div broadcast", List.of("Div"), List.of(In.t("a", 2, 3), In.positive("b", 3)),
                x -> x.b().div(x.get("a"), x.get("b"))));
        l.add(c("sum of three", List.of("Sum"), List.of(In.t("a", 2, 3), In.t("b", 3), In.t("c", 1, 1)),
                x -> x.b().sum(List.of(x.get("a"), x.get("b"), x.get("c")))));
        l.add(c("neg", List.of("Neg"), List.of(In.t("a", 3, 2)), x -> x.b().neg(x.get("a"))));
        l.add(c("pow constant 2.5", List.of("Pow"), List.of(In.positive("a", 3, 2)),
                x -> x.b().pow(x.get("a"), x.b().constant(DataType.DOUBLE, 2.5))));
        l.add(c("pow constant 2", List.of("Pow"), List.of(In.t("a", 4)),
                x -> x.b().pow(x.get("a"), x.b().constant(DataType.DOUBLE, 2))));
        l.add(c("sqrt", List.of("Sqrt"), List.of(In.positive("a", 5)), x -> x.b().sqrt(x.get("a"))));
        l.add(c("reciprocal", List.of("Reciprocal"), List.of(In.positive("a", 5)),
                x -> x.b().reciprocal(x.get("a"))));
        l.add(c("exp", List.of("Exp"), List.of(In.t("a", 2, 3)), x -> x.b().exp(x.get("a"))));
        l.add(c("log", List.of("Log"), List.of(In.positive("a", 2, 3)), x -> x.b().log(x.get("a"))));
        l.add(c("tanh", List.of("Tanh"), List.of(In.t("a", 2, 3)), x -> x.b().tanh(x.get("a"))));
        // ONNX Runtime has no float64 Erf: these run in float32, with eps 1e-3 (rounding error ~1e-7/1e-3 = 1e-4)
        // and a 1e-3 tolerance.
        l.add(new Case("erf (float32)", List.of("Erf"), 17, List.of(In.t("a", 2, 3)), x -> x.b().erf(x.get("a")),
                1e-3, DataType.FLOAT, 1e-3));
        l.add(c("sigmoid", List.of("Sigmoid"), List.of(In.t("a", 2, 3)), x -> x.b().sigmoid(x.get("a"))));
        l.add(c("relu (inputs away from 0)", List.of("Relu"), List.of(In.positive("a", 2, 3)),
                x -> x.b().relu(x.b().sub(x.get("a"), x.b().constant(DataType.DOUBLE, 1.234)))));
        l.add(new Case("gelu exact (opset 20, float32)", List.of("Gelu"), 20, List.of(In.t("a", 2, 3)),
                x -> x.b().gelu(x.get("a"), "none"), 1e-3, DataType.FLOAT, 1e-3));
        l.add(new Case("gelu tanh (opset 20)", List.of("Gelu"), 20, List.of(In.t("a", 2, 3)),
                x -> x.b().gelu(x.get("a"), "tanh"), 1e-6));
        l.add(c("gelu_new decomposed", List.of("Tanh", "Pow", "Mul"), List.of(In.t("a", 2, 3)),
                x -> x.b().gelu(x.get("a"), "tanh")));
        l.add(c("softmax last axis", List.of("Softmax"), List.of(In.t("a", 2, 3, 4)),
                x -> x.b().softmax(x.get("a"), -1)));
        l.add(c("softmax axis 1", List.of("Softmax"), List.of(In.t("a", 2, 3, 4)),
                x -> x.b().softmax(x.get("a"), 1)));
        l.add(c("log softmax", List.of("LogSoftmax"), List.of(In.t("a", 3, 5)),
                x -> x.b().logSoftmax(x.get("a"), -1)));
        l.add(c("layer norm", List.of("LayerNormalization"),
                List.of(In.t("x", 2, 3, 6), In.t("scale", 6), In.t("bias", 6)),
                x -> x.b().layerNorm(x.get("x"), x.get("scale"), x.get("bias"), 1e-5f)));
        l.add(c("layer norm over two axes", List.of("LayerNormalization"),
                List.of(In.t("x", 2, 3, 4), In.t("scale", 3, 4)),
                x -> x.b().op("LayerNormalization", List.of(x.get("x"), x.get("scale")),
                        Attribute.of("axis", 1L), Attribute.of("epsilon", 1e-5f))));
        l.add(c("reduce sum keepdims", List.of("ReduceSum"), List.of(In.t("a", 2, 3, 4)),
                x -> x.b().reduceSum(x.get("a"), new long[] {-1, 0}, true)));
        l.add(c("reduce mean no keepdims", List.of("ReduceMean"), List.of(In.t("a", 2, 3, 4)),
                x -> x.b().reduceMean(x.get("a"), new long[] {1}, false)));
        l.add(c("reduce mean all", List.of("ReduceMean"), List.of(In.t("a", 2, 3)),
                x -> x.b().op("ReduceMean", List.of(x.get("a")), Attribute.of("keepdims", 0L))));
        l.add(c("reshape", List.of("Reshape"), List.of(In.t("a", 2, 3, 4)), x -> x.b().reshape(x.get("a"), 6, -1)));
        l.add(c("flatten", List.of("Flatten"), List.of(In.t("a", 2, 3, 4)), x -> x.b().flatten(x.get("a"), 2)));
        l.add(c("transpose", List.of("Transpose"), List.of(In.t("a", 2, 3, 4)),
                x -> x.b().mul(x.b().transpose(x.get("a"), 2, 0, 1), x.b().constant(Tensor.ofDoubles(
                        new double[] {1, 2, 3, 4}, 4, 1, 1)))));
        l.add(c("squeeze and unsqueeze", List.of("Squeeze", "Unsqueeze"), List.of(In.t("a", 2, 1, 3)),
                x -> x.b().unsqueeze(x.b().squeeze(x.get("a"), 1), 0)));
        l.add(c("split uneven with an unused output", List.of("Split"), List.of(In.t("a", 2, 7)),
                x -> {
                    List<Value> parts = x.b().split(x.get("a"), 1, 2, 4, 1);
                    return x.b().concat(List.of(parts.get(2), parts.get(0)), 1);
                }));
        l.add(c("slice steps and negative indices", List.of("Slice"), List.of(In.t("a", 4, 7)),
                x -> x.b().slice(x.get("a"), new long[] {-1, 1}, new long[] {Long.MIN_VALUE, -1},
                        new long[] {1, 0}, new long[] {-2, 2})));
        l.add(c("concat", List.of("Concat"), List.of(In.t("a", 2, 3), In.t("b", 2, 1), In.t("c", 2, 2)),
                x -> x.b().concat(List.of(x.get("a"), x.get("b"), x.get("c")), -1)));
        l.add(c("gather rows with repeats", List.of("Gather"), List.of(In.t("table", 5, 3)),
                x -> x.b().gather(x.get("table"), x.b().constant(Tensor.ofLongs(new long[] {1, 3, 1, -1, 0, 1}, 2, 3)),
                        0)));
        l.add(c("gather along axis 1", List.of("Gather"), List.of(In.t("data", 2, 4, 3)),
                x -> x.b().gather(x.get("data"), x.b().constant(Tensor.ofLongs(new long[] {3, 0, 3}, 3)), 1)));
        l.add(c("gather elements", List.of("GatherElements"), List.of(In.t("data", 3, 4)),
                x -> x.b().gatherElements(x.get("data"), x.b().constant(Tensor.ofLongs(
                        new long[] {0, 2, 2, 1, 3, 3}, 3, 2)), 1)));
        l.add(c("where", List.of("Where"), List.of(In.t("a", 2, 3), In.t("b", 3)),
                x -> x.b().where(x.b().constant(Tensor.ofBools(new boolean[] {true, false, true, false, false, true},
                        2, 3)), x.get("a"), x.get("b"))));
        l.add(c("expand", List.of("Expand"), List.of(In.t("a", 3, 1)),
                x -> x.b().expand(x.get("a"), x.b().ints(2, 3, 4))));
        l.add(new Case("cast through float32", List.of("Cast"), 17, List.of(In.t("a", 2, 3)),
                x -> x.b().cast(x.b().mul(x.b().cast(x.get("a"), DataType.FLOAT),
                        x.b().constant(3f)), DataType.DOUBLE), 1e-3, DataType.DOUBLE, 1e-3));
        l.add(c("identity", List.of("Identity"), List.of(In.t("a", 2)), x -> x.b().identity(x.get("a"))));
        l.add(c("cross entropy mean with ignore_index", List.of("SoftmaxCrossEntropyLoss"),
                List.of(In.t("scores", 4, 5)),
                x -> x.b().softmaxCrossEntropy(x.get("scores"), x.b().constant(Tensor.ofLongs(
                        new long[] {1, -100, 4, 0}, 4)), "mean", -100L).output(0)));
        l.add(c("cross entropy sum, 3-d scores", List.of("SoftmaxCrossEntropyLoss"),
                List.of(In.t("scores", 2, 5, 3)),
                x -> x.b().softmaxCrossEntropy(x.get("scores"), x.b().constant(Tensor.ofLongs(
                        new long[] {1, 0, 4, 2, 2, 3}, 2, 3)), "sum", null).output(0)));
        l.add(c("cross entropy none", List.of("SoftmaxCrossEntropyLoss"), List.of(In.t("scores", 3, 4)),
                x -> x.b().softmaxCrossEntropy(x.get("scores"), x.b().constant(Tensor.ofLongs(
                        new long[] {3, 0, 2}, 3)), "none", null).output(0)));
        l.add(c("fan-out: a value read three times", List.of("Mul", "Add"), List.of(In.t("a", 3)),
                x -> x.b().add(x.b().mul(x.get("a"), x.get("a")), x.b().tanh(x.get("a")))));
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void analyticGradientsMatchCentralDifferences(Case tc) throws Exception {
        Random rnd = new Random(tc.name().hashCode());
        Graph g = new Graph("case");
        GraphBuilder b = new GraphBuilder(g, tc.opset());
        Map<String, Value> inputs = new LinkedHashMap<>();
        Map<String, double[]> values = new HashMap<>();
        for (In in : tc.inputs()) {
            inputs.put(in.name(), b.input(in.name(), TensorType.of(tc.dtype(), in.shape())));
            double[] v = new double[(int) Tensor.checkedElementCount(in.shape())];
            for (int i = 0; i < v.length; i++) {
                v[i] = in.lo() + (in.hi() - in.lo()) * rnd.nextDouble();
            }
            values.put(in.name(), v);
        }
        Value y = tc.body().apply(new Ctx(b, inputs));
        Value loss = b.reduceSum(b.op("Sin", List.of(y)), new long[0], false);
        b.output(loss, "loss");
        List<Value> trainables = tc.inputs().stream().filter(In::trainable).map(i -> inputs.get(i.name())).toList();
        Map<String, Value> grads = Autodiff.gradients(g, loss, trainables, tc.opset());
        for (Map.Entry<String, Value> e : grads.entrySet()) {
            b.output(e.getValue(), "grad_" + e.getKey());
        }
        for (var n : g.nodes()) {
            COVERED.add(n.opType());
        }
        Model model = new Model(g, tc.opset());
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(model), new OrtSession.SessionOptions())) {
            Map<String, double[]> analytic = new HashMap<>();
            try (Feeds f = new Feeds(tc, values); OrtSession.Result r = s.run(f.map)) {
                for (String name : grads.keySet()) {
                    analytic.put(name, flat((OnnxTensor) r.get("grad_" + name).get()));
                }
            }
            for (In in : tc.inputs()) {
                if (!in.trainable()) {
                    continue;
                }
                double[] v = values.get(in.name());
                double[] a = analytic.get(in.name());
                assertEquals(v.length, a.length, "gradient of " + in.name() + " has the input's size");
                int step = Math.max(1, v.length / 24);
                for (int i = 0; i < v.length; i += step) {
                    double keep = v[i];
                    v[i] = keep + tc.eps();
                    double plus = lossOf(s, tc, values);
                    v[i] = keep - tc.eps();
                    double minus = lossOf(s, tc, values);
                    v[i] = keep;
                    double numeric = (plus - minus) / (2 * tc.eps());
                    double tol = tc.tolerance() * 0.1 + tc.tolerance() * Math.abs(numeric);
                    assertEquals(numeric, a[i], tol, tc.name() + ": d loss / d " + in.name() + "[" + i + "]");
                }
            }
        }
    }

    private static double lossOf(OrtSession s, Case tc, Map<String, double[]> values) throws Exception {
        try (Feeds f = new Feeds(tc, values); OrtSession.Result r = s.run(f.map, Set.of("loss"))) {
            return flat((OnnxTensor) r.get(0))[0];
        }
    }

    private static double[] flat(OnnxTensor t) {
        if (t.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT) {
            java.nio.FloatBuffer fb = t.getFloatBuffer();
            double[] out = new double[fb.remaining()];
            for (int i = 0; i < out.length; i++) {
                out[i] = fb.get(i);
            }
            return out;
        }
        DoubleBuffer buf = t.getDoubleBuffer();
        double[] out = new double[buf.remaining()];
        buf.get(out);
        return out;
    }

    /** The case's inputs as ORT tensors, closed together. */
    private static final class Feeds implements AutoCloseable {
        final Map<String, OnnxTensor> map = new HashMap<>();

        Feeds(Case tc, Map<String, double[]> values) throws Exception {
            for (In in : tc.inputs()) {
                double[] v = values.get(in.name());
                if (tc.dtype() == DataType.FLOAT) {
                    float[] f = new float[v.length];
                    for (int i = 0; i < v.length; i++) {
                        f[i] = (float) v[i];
                    }
                    map.put(in.name(), OnnxTensor.createTensor(ENV, java.nio.FloatBuffer.wrap(f), in.shape()));
                } else {
                    map.put(in.name(), OnnxTensor.createTensor(ENV, DoubleBuffer.wrap(v), in.shape()));
                }
            }
        }

        @Override
        public void close() {
            map.values().forEach(OnnxTensor::close);
        }
    }

    @Test
    void everyRuleIsCoveredByACase() {
        cases().forEach(tc -> COVERED.addAll(tc.ops()));
        Set<String> missing = new TreeSet<>(Autodiff.supportedOps());
        missing.removeAll(COVERED);
        missing.remove("Dropout"); // random masks: checked against its mask output in AutodiffTest
        missing.remove("Cos"); // the adjoint of the Sin loss is Cos; both are checked through every case's loss
        assertTrue(missing.isEmpty(), "rules without a gradient check: " + missing);
    }

    @AfterAll
    static void report() {
        // Nothing to release: sessions are closed per case; the environment is shared by the JVM.
    }
}
