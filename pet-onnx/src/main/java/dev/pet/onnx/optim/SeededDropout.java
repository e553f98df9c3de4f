package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Replaces training-mode {@code Dropout} nodes by masks computed from a seeded int64 graph input, so a step is a
 * pure function of its inputs and a run can be replayed and resumed exactly (ONNX Runtime's own Dropout draws from
 * a per-session generator that cannot be rewound).
 *
 * <p>The mask of element i of node k is a hash of (seed, k, i): two rounds of the Park–Miller generator
 * (x ↦ 48271·x mod 2³¹−1) over i + 7919·k + 104729·seed, in int64 arithmetic that cannot overflow; an element is kept
 * when hash / (2³¹−1) ≥ ratio, and kept elements are scaled by 1/(1−ratio) as Dropout does.
 */
public final class SeededDropout {
    private static final long MODULUS = 2147483647L;
    private static final long MULTIPLIER = 48271L;

    private SeededDropout() {
    }

    /** Rewrites every Dropout in training mode; returns how many were replaced. */
    public static int rewrite(Graph graph, Value seed, int opset) {
        GraphBuilder b = new GraphBuilder(graph, opset);
        int k = 0;
        for (Node n : new ArrayList<>(graph.nodes())) {
            if (!n.opType().equals("Dropout") || !n.domain().isEmpty()) {
                continue;
            }
            Tensor training = n.input(2) == null ? null : ShapeInference.constantValue(n.input(2));
            boolean isTraining = n.input(2) != null && (training == null || training.toDoubleArray()[0] != 0);
            if (!isTraining) {
                continue;
            }
            Tensor ratioT = n.input(1) == null ? null : ShapeInference.constantValue(n.input(1));
            if (n.input(1) != null && ratioT == null) {
                throw new OnnxException(n.describe() + ": the dropout ratio must be a constant to be seeded");
            }
            double ratio = ratioT == null ? 0.5 : ratioT.toDoubleArray()[0];
            Value x = n.input(0);
            DataType dt = GraphBuilder.elementType(x);
            String old = b.setScope(n.name().isEmpty() ? "dropout" : n.name());
            Value shape = b.shape(x);
            Value count = b.reduceProd(shape);
            Value idx = b.reshape(b.range(b.scalarInt(0), count, b.scalarInt(1)), shape);
            Value start = b.add(b.add(idx, b.scalarInt(7919L * (k + 1))), b.mul(seed, b.scalarInt(104729L)));
            Value m = b.scalarInt(MODULUS);
            Value h = b.op("Mod", List.of(b.add(b.op("Mod", List.of(start, m)), b.scalarInt(1)), m));
            h = b.op("Mod", List.of(b.mul(h, b.scalarInt(MULTIPLIER)), m));
            h = b.op("Mod", List.of(b.mul(h, b.scalarInt(MULTIPLIER)), m));
            Value keep = b.not(b.less(h, b.scalarInt((long) Math.ceil(ratio * MODULUS))));
            Value scaled = b.mul(b.mul(x, b.cast(keep, dt)), b.constant(dt, ratio >= 1 ? 0 : 1 / (1 - ratio)));
            b.setScope(old);
            Value out = n.output(0);
            graph.replaceAllUses(out, scaled);
            Value mask = n.output(1);
            if (mask != null) {
                graph.replaceAllUses(mask, keep);
            }
            graph.removeNode(n);
            k++;
        }
        return k;
    }
}
