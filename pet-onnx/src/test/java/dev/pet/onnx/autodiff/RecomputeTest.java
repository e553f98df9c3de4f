package dev.pet.onnx.autodiff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Recomputation: values recomputed in the backward pass are no longer read from the forward pass, and the
 * gradients stay what they were (finite-difference checks of the recomputed activations are in
 * {@link GradientCheckTest}).
 */
class RecomputeTest {
    private static final int BLOCKS = 3;
    private static final long WIDTH = 8;

    /** h₀ = x·A; hᵢ₊₁ = hᵢ + GELU(LN(hᵢ)·W1ᵢ + cᵢ)·W2ᵢ; loss = mean(h₃²). A and every cᵢ are trainable. */
    private static Model blocks(Random r, boolean dropout) {
        Graph g = new Graph("blocks");
        GraphBuilder b = new GraphBuilder(g, 17);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", "seq", WIDTH));
        Value h = b.identity(b.matMul(x, weight(b, "A", r, WIDTH, WIDTH)));
        h.rename("h0");
        for (int i = 0; i < BLOCKS; i++) {
            b.setScope("block" + i);
            Value ln = b.layerNorm(h, weight(b, "ln" + i + ".w", r, WIDTH), weight(b, "ln" + i + ".b", r, WIDTH),
                    1e-5f);
            Value up = b.add(b.matMul(ln, weight(b, "W1." + i, r, WIDTH, 2 * WIDTH)), weight(b, "c" + i, r,
                    2 * WIDTH));
            Value act = b.gelu(up, "tanh");
            if (dropout) {
                act = b.node("Dropout", "", List.of(act, b.constant(DataType.FLOAT, 0.1),
                        b.constant(Tensor.ofBools(new boolean[] {true}))), 1).output(0);
            }
            h = b.add(h, b.matMul(act, weight(b, "W2." + i, r, 2 * WIDTH, WIDTH)));
            h.rename("h" + (i + 1));
        }
        b.setScope("");
        b.output(b.reduceMean(b.mul(h, h), new long[] {0, 1, 2}, false), "loss");
        return new Model(g, 17);
    }

    private static Value weight(GraphBuilder b, String name, Random r, long... shape) {
        double[] d = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = r.nextGaussian() * 0.5;
        }
        return b.initializer(name, Tensor.fromDoubles(DataType.FLOAT, d, shape));
    }

    private static final List<String> TRAINABLES = List.of("A", "c0", "c1", "c2");

    private static List<String> boundaries() {
        List<String> l = new ArrayList<>();
        for (int i = 0; i <= BLOCKS; i++) {
            l.add("h" + i);
        }
        return l;
    }

    /** Differentiates in place; returns the number of forward nodes (the backward ones follow them). */
    private static int differentiate(Model m, Recompute recompute) {
        Graph g = m.graph();
        List<Value> t = new ArrayList<>();
        for (String name : TRAINABLES) {
            t.add(g.requireValue(name));
        }
        int before = g.nodes().size();
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue("loss"), t, recompute);
        GraphBuilder b = new GraphBuilder(g, 17);
        for (String name : TRAINABLES) {
            b.output(grads.get(name), "grad." + name);
        }
        return before;
    }

    /** Values produced by the forward nodes of {@code block} (except its output) that backward nodes read. */
    private static Set<String> innerValuesReadByBackward(Graph g, int forwardNodes, int block) {
        Set<Node> backward = new HashSet<>(g.nodes().subList(forwardNodes, g.nodes().size()));
        Set<String> read = new HashSet<>();
        for (Node n : g.nodes().subList(0, forwardNodes)) {
            if (!n.name().startsWith("block" + block + "/")) {
                continue;
            }
            for (Value out : n.outputs()) {
                if (out != null && !out.name().equals("h" + (block + 1))
                        && out.uses().stream().anyMatch(backward::contains)) {
                    read.add(out.name());
                }
            }
        }
        return read;
    }

    @Test
    void perBlockRecomputationReadsNothingInsideABlockFromTheForwardPass() {
        Model kept = blocks(new Random(3), false);
        int keptForward = differentiate(kept, Recompute.NONE);
        assertFalse(innerValuesReadByBackward(kept.graph(), keptForward, 1).isEmpty(),
                "without recomputation the backward pass reads the block's activations");
        Model recomputed = blocks(new Random(3), false);
        int forward = differentiate(recomputed, Recompute.segments(boundaries()));
        for (int i = 0; i < BLOCKS; i++) {
            assertEquals(Set.of(), innerValuesReadByBackward(recomputed.graph(), forward, i), "block " + i);
        }
    }

    @Test
    void recomputedGradientsEqualKeptOnes() {
        Random r = new Random(11);
        float[] x = new float[2 * 5 * (int) WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        Map<String, Ort.Feed> feeds = Map.of("x", Ort.Feed.floats(x, 2, 5, WIDTH));
        Map<String, double[]> reference = null;
        for (Recompute mode : List.of(Recompute.NONE, Recompute.ACTIVATIONS, Recompute.segments(boundaries()))) {
            Model m = blocks(new Random(3), false);
            differentiate(m, mode);
            Map<String, double[]> got;
            try (Ort ort = new Ort(m)) {
                got = ort.run(feeds);
            }
            if (reference == null) {
                reference = got;
                continue;
            }
            for (Map.Entry<String, double[]> e : reference.entrySet()) {
                double[] want = e.getValue();
                double[] have = got.get(e.getKey());
                double scale = 0;
                for (double v : want) {
                    scale = Math.max(scale, Math.abs(v));
                }
                // float32: the same ops on the same values; ORT may fuse the copies differently, so allow a few
                // float32 roundings of the largest entry
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], have[i], 1e-6 * Math.max(scale, 1), mode + " " + e.getKey() + "[" + i
                            + "]");
                }
            }
        }
    }

    @Test
    void composedGeluKeepsOnlyItsInput() {
        Model kept = blocks(new Random(5), false);
        int keptForward = differentiate(kept, Recompute.NONE);
        assertTrue(tanhOutputsReadByBackward(kept.graph(), keptForward) > 0);
        Model recomputed = blocks(new Random(5), false);
        int forward = differentiate(recomputed, Recompute.ACTIVATIONS);
        assertEquals(0, tanhOutputsReadByBackward(recomputed.graph(), forward));
        assertTrue(recomputed.graph().nodes().stream().anyMatch(n -> n.name().startsWith("recompute/")));
    }

    private static long tanhOutputsReadByBackward(Graph g, int forwardNodes) {
        Set<Node> backward = new HashSet<>(g.nodes().subList(forwardNodes, g.nodes().size()));
        return g.nodes().subList(0, forwardNodes).stream().filter(n -> n.opType().equals("Tanh"))
                .filter(n -> n.output(0).uses().stream().anyMatch(backward::contains)).count();
    }

    @Test
    void aSegmentWithRandomDropoutIsRefused() {
        Model m = blocks(new Random(3), true);
        OnnxException e = assertThrows(OnnxException.class, () -> differentiate(m,
                Recompute.segments(boundaries())));
        assertTrue(e.getMessage().contains("Dropout") && e.getMessage().contains("'h0'"), e.getMessage());
    }

    @Test
    void segmentEndsMustBeConnected() {
        Model m = blocks(new Random(3), false);
        OnnxException e = assertThrows(OnnxException.class, () -> differentiate(m,
                Recompute.segments(List.of("h2", "h1"))));
        assertTrue(e.getMessage().contains("'h1' is not computed from 'h2'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Recompute.segments(List.of("h0")));
    }

    @Test
    void crossEntropyBackwardMaterialisesNoZerosOfTheLogitsSize() {
        Graph g = new Graph("ce");
        GraphBuilder b = new GraphBuilder(g, 17);
        Value logits = b.input("logits", TensorType.of(DataType.FLOAT, 6, 50));
        Value labels = b.input("labels", TensorType.of(DataType.INT64, 6, 1));
        Value perToken = b.neg(b.gatherElements(b.logSoftmax(logits, 1), labels, 1));
        b.output(b.op("ReduceMean", List.of(perToken), Attribute.of("keepdims", 0L)), "loss");
        int before = g.nodes().size();
        Autodiff.differentiate(g, 17, g.requireValue("loss"), List.of(logits));
        List<String> wide = new ArrayList<>();
        for (Node n : g.nodes().subList(before, g.nodes().size())) {
            Value out = n.output(0);
            if (out.type().isStatic() && Tensor.checkedElementCount(out.type().shape()) == 300) {
                wide.add(n.opType());
            }
        }
        // exp(log p) · (-Σ updates), then the one-hot part added in place by one scatter
        assertEquals(List.of("Exp", "Mul", "ScatterElements"), wide);
    }
}
