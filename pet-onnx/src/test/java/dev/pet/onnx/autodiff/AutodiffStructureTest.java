package dev.pet.onnx.autodiff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.SeededDropout;
import dev.pet.onnx.optim.TrainStepBuilder;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** What the backward graph contains: only needed nodes, one Sum per fan-out, clear errors, dropout masks. */
class AutodiffStructureTest {
    private static Value weight(GraphBuilder b, String name, Random r, long... shape) {
        double[] d = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = r.nextGaussian() * 0.3;
        }
        return b.initializer(name, Tensor.fromDoubles(DataType.FLOAT, d, shape));
    }

    /** x·W (frozen) + (x·A)·B (trainable low-rank), LayerNorm, a second frozen layer, mean-squared loss. */
    private static Graph loraLike(Random r) {
        Graph g = new Graph("lora");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", "seq", 8L));
        Value base = b.matMul(x, weight(b, "W", r, 8, 8));
        Value delta = b.matMul(b.matMul(x, weight(b, "A", r, 8, 2)), weight(b, "B", r, 2, 8));
        Value h = b.layerNorm(b.add(base, delta), weight(b, "gamma", r, 8), weight(b, "beta", r, 8), 1e-5f);
        Value out = b.matMul(b.gelu(h, "tanh"), weight(b, "W2", r, 8, 8));
        b.output(b.reduceMean(b.mul(out, out), new long[] {0, 1, 2}, false), "loss");
        return g;
    }

    @Test
    void frozenWeightsGetNoGradientNodes() {
        Graph g = loraLike(new Random(1));
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"),
                List.of(g.requireValue("A"), g.requireValue("B")));
        List<Node> backward = g.nodes().subList(g.nodes().size() - grads.addedNodes(), g.nodes().size());
        for (Node n : backward) {
            for (Value out : n.outputs()) {
                long[] shape = out != null && out.type().isStatic() ? out.type().shape() : null;
                // no backward node computes a tensor shaped like a frozen 8x8 weight (dW, dW2) or like gamma/beta
                assertTrue(shape == null || !(Arrays.equals(shape, new long[] {8, 8})
                        || (n.opType().startsWith("Reduce") && Arrays.equals(shape, new long[] {8}))),
                        "backward node computes a frozen-weight-shaped value: " + n);
            }
            // the frozen input path (x) needs no gradient: no backward node multiplies by A's transpose
            assertTrue(!(n.opType().equals("Gemm") && n.inputs().contains(g.requireValue("A"))
                    && n.intAttr("transB", 0) == 1), "gradient flows to the input x: " + n);
        }
        Graph full = loraLike(new Random(1));
        Gradients all = Autodiff.differentiate(full, 17, full.requireValue("loss"), List.of(full.requireValue("A"),
                full.requireValue("B"), full.requireValue("W"), full.requireValue("W2"),
                full.requireValue("gamma"), full.requireValue("beta")));
        assertTrue(all.addedNodes() > grads.addedNodes() + 4, "full fine-tune adds " + all.addedNodes()
                + " nodes, LoRA-only " + grads.addedNodes());
    }

    @Test
    void fanOutIsSummedOnceWithOneSumNode() {
        Graph g = new Graph("fan");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.DOUBLE, 3));
        Value y = b.add(b.mul(x, x), b.exp(x));
        b.output(b.op("ReduceSum", List.of(y), Attribute.of("keepdims", 0L)), "loss");
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(x));
        List<Node> sums = g.nodes().stream().filter(n -> n.opType().equals("Sum")).toList();
        assertEquals(1, sums.size(), "Sum nodes: " + sums);
        assertEquals(3, sums.get(0).inputCount(), "x is read three times (Mul twice, Exp once)");
        assertEquals(sums.get(0).output(0), grads.get("x"));
        b.output(grads.get("x"), "dx");
        double[] xs = {0.3, -1.2, 2.0};
        try (Ort ort = new Ort(new Model(g, 17))) {
            double[] dx = ort.run(Map.of("x", Ort.Feed.doubles(xs, 3)), "dx").get("dx");
            for (int i = 0; i < 3; i++) {
                assertEquals(2 * xs[i] + Math.exp(xs[i]), dx[i], 1e-12);
            }
        }
    }

    @Test
    void missingRuleIsAnErrorNamingTheNode() {
        Graph g = new Graph("missing");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 3));
        Node cos = g.addNode("Abs", "", "my_abs", List.of(x), List.of("c"), List.of());
        b.output(b.op("ReduceSum", List.of(cos.output(0)), Attribute.of("keepdims", 0L)), "loss");
        OnnxException e = assertThrows(OnnxException.class,
                () -> Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(x)));
        assertTrue(e.getMessage().contains("Abs 'my_abs'"), e.getMessage());
        assertTrue(e.getMessage().contains("no gradient rule"), e.getMessage());
    }

    @Test
    void nodesOffThePathNeedNoRule() {
        // Abs has no rule, but it reads only a frozen value: no error, and no node for it in the backward pass.
        Graph g = new Graph("offpath");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 3));
        Value frozen = b.initializer("f", Tensor.ofFloats(new float[] {-1, 2, -3}, 3));
        Value cos = b.op("Abs", List.of(frozen));
        // integer path: argmax of x picks an index; the index carries no gradient
        Value idx = b.op("ArgMax", List.of(x), Attribute.of("axis", 0L), Attribute.of("keepdims", 0L));
        Value picked = b.gather(x, idx, 0);
        b.output(b.add(b.op("ReduceSum", List.of(b.mul(x, cos)), Attribute.of("keepdims", 0L)), picked), "loss");
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(x));
        b.output(grads.get("x"), "dx");
        try (Ort ort = new Ort(new Model(g, 17))) {
            double[] dx = ort.run(Map.of("x", Ort.Feed.floats(new float[] {0.5f, 4f, -1f}, 3)), "dx").get("dx");
            assertEquals(1, dx[0], 1e-6);
            assertEquals(2 + 1, dx[1], 1e-6);
            assertEquals(3, dx[2], 1e-6);
        }
    }

    @Test
    void trainableOffThePathGetsZeros() {
        Graph g = new Graph("zeros");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 2));
        Value unused = b.initializer("unused", Tensor.ofFloats(new float[] {1, 2, 3}, 3));
        b.output(b.op("ReduceSum", List.of(b.mul(x, x)), Attribute.of("keepdims", 0L)), "loss");
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(x, unused));
        b.output(grads.get("unused"), "du");
        try (Ort ort = new Ort(new Model(g, 17))) {
            double[] du = ort.run(Map.of("x", Ort.Feed.floats(new float[] {1, 2}, 2)), "du").get("du");
            assertEquals(List.of(0.0, 0.0, 0.0), Arrays.stream(du).boxed().toList());
        }
    }

    @Test
    void trainingDropoutGradientUsesTheMaskOrtDrew() {
        Graph g = new Graph("dropout");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.DOUBLE, 200));
        Node d = b.dropout(x, b.constant(DataType.DOUBLE, 0.3), b.constant(Tensor.ofBools(new boolean[] {true})));
        Value w = b.constant(Tensor.ofDoubles(linspace(200), 200));
        b.output(b.op("ReduceSum", List.of(b.mul(d.output(0), w)), Attribute.of("keepdims", 0L)), "loss");
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(x));
        b.output(grads.get("x"), "dx");
        b.output(d.output(1), "mask");
        double[] xs = linspace(200);
        try (Ort ort = new Ort(new Model(g, 17))) {
            Map<String, double[]> out = ort.run(Map.of("x", Ort.Feed.doubles(xs, 200)));
            double[] mask = out.get("mask");
            double[] dx = out.get("dx");
            int kept = 0;
            for (int i = 0; i < 200; i++) {
                assertEquals(mask[i] * linspace(200)[i] / 0.7, dx[i], 1e-12, "dx[" + i + "]");
                kept += (int) mask[i];
            }
            assertTrue(kept > 100 && kept < 180, "kept " + kept + " of 200 at ratio 0.3");
        }
    }

    private static double[] linspace(int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = 0.5 + 0.01 * i;
        }
        return d;
    }

    @Test
    void seededDropoutReplaysFromTheSeedWithIndependentLookingMasks() {
        Graph g = new Graph("dd");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 100, 100));
        Node d1 = b.dropout(x, b.constant(0.25f), b.constant(Tensor.ofBools(new boolean[] {true})));
        Node d2 = b.dropout(d1.output(0), b.constant(0.25f), b.constant(Tensor.ofBools(new boolean[] {true})));
        b.output(d1.output(0), "y1");
        b.output(d2.output(1), "mask2");
        Value seed = b.input(TrainStepBuilder.DROPOUT_SEED, TensorType.of(DataType.INT64));
        assertEquals(2, SeededDropout.rewrite(g, seed, 17));
        assertTrue(g.nodes().stream().noneMatch(n -> n.opType().equals("Dropout")));
        float[] ones = new float[10000];
        Arrays.fill(ones, 1f);
        try (Ort ort = new Ort(new Model(g, 17))) {
            Map<String, double[]> a = ort.run(Map.of("x", Ort.Feed.floats(ones, 100, 100),
                    TrainStepBuilder.DROPOUT_SEED, Ort.Feed.longs(new long[] {42})));
            Map<String, double[]> again = ort.run(Map.of("x", Ort.Feed.floats(ones, 100, 100),
                    TrainStepBuilder.DROPOUT_SEED, Ort.Feed.longs(new long[] {42})));
            Map<String, double[]> other = ort.run(Map.of("x", Ort.Feed.floats(ones, 100, 100),
                    TrainStepBuilder.DROPOUT_SEED, Ort.Feed.longs(new long[] {43})));
            assertTrue(Arrays.equals(a.get("y1"), again.get("y1")), "same seed, same mask");
            assertTrue(Arrays.equals(a.get("mask2"), again.get("mask2")), "same seed, same mask");
            assertNotEquals(Arrays.toString(a.get("y1")), Arrays.toString(other.get("y1")));
            double[] y1 = a.get("y1");
            double[] m2 = a.get("mask2");
            int kept1 = 0;
            int kept2 = 0;
            int agree = 0;
            int runs = 0;
            for (int i = 0; i < y1.length; i++) {
                boolean k1 = y1[i] != 0;
                if (k1) {
                    kept1++;
                    assertEquals(1 / 0.75, y1[i], 1e-6);
                }
                kept2 += (int) m2[i];
                agree += (k1 == (m2[i] != 0)) ? 1 : 0;
                if (i > 0 && k1 != (y1[i - 1] != 0)) {
                    runs++;
                }
            }
            // 10 000 Bernoulli(0.75) draws: mean 7500, sd ≈ 43; 5 sd bounds.
            assertTrue(Math.abs(kept1 - 7500) < 220, "kept " + kept1);
            assertTrue(Math.abs(kept2 - 7500) < 220, "kept " + kept2);
            // independent masks agree with probability 0.75² + 0.25² = 0.625 (sd ≈ 48)
            assertTrue(Math.abs(agree - 6250) < 250, "masks of two nodes agree on " + agree);
            // neighbouring elements independent: keep/drop changes with probability 2·0.75·0.25 = 0.375
            assertTrue(Math.abs(runs - 3750) < 250, "changes between neighbours " + runs);
        }
    }

    @Test
    void rejectsNonScalarLossAndComputedTrainables() {
        Graph g = new Graph("bad");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 3));
        Value y = b.mul(x, x);
        OnnxException e = assertThrows(OnnxException.class, () -> Autodiff.differentiate(g, 17, y, List.of(x)));
        assertTrue(e.getMessage().contains("scalar"), e.getMessage());
        Value loss = b.op("ReduceSum", List.of(y), Attribute.of("keepdims", 0L));
        e = assertThrows(OnnxException.class, () -> Autodiff.differentiate(g, 17, loss, new ArrayList<>(List.of(y))));
        assertTrue(e.getMessage().contains(y.name()), e.getMessage());
    }
}
