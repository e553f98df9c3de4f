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
 * pure function of its inputs and a run can be replayed and resumed exactly. ONNX Runtime's own Dropout (and
 * RandomUniformLike, even with a {@code seed} attribute) draws from generator state inside the kernel that
 * advances on every run, so step n's mask would depend on how many runs the session has made.
 *
 * <p><b>Hash.</b> The mask of element i of node k is a counter-based hash of (seed, k, i) in int64 arithmetic that
 * cannot overflow: with the prime M = 2³¹ − 1, x₀ = (i + 69069·(seed mod M) + 1000003·k) mod M, then three rounds of
 * x ← (x² + cᵣ) mod M; x ← 48271·x mod M (every product stays below 2⁶²). The squaring makes the hash nonlinear:
 * neighbouring elements, different nodes and consecutive seeds get independent-looking masks (a purely linear
 * Park–Miller step would turn consecutive indices into an evenly spaced, visibly periodic sequence). An element is
 * kept when x / M ≥ ratio; kept elements are scaled by 1/(1 − ratio), as Dropout does.
 */
public final class SeededDropout {
    private static final long M = 2147483647L;
    private static final long[] ROUND_CONSTANTS = {1013904223L, 1664525L, 362436069L};

    private SeededDropout() {
    }

    /** Rewrites every Dropout in training mode; returns how many were replaced. */
    public static int rewrite(Graph graph, Value seed, int opset) {
        List<Node> dropouts = new ArrayList<>();
        for (Node n : graph.nodes()) {
            if (n.opType().equals("Dropout") && n.domain().isEmpty() && mayTrain(n)) {
                dropouts.add(n);
            }
        }
        if (dropouts.isEmpty()) {
            return 0;
        }
        GraphBuilder b = new GraphBuilder(graph, opset);
        String scope = b.setScope("seeded_dropout");
        Value mod = b.scalarInt(M);
        Value seedTerm = b.mul(b.op("Mod", List.of(seed, mod)), b.scalarInt(69069));
        int k = 0;
        for (Node n : dropouts) {
            k++;
            Tensor ratioT = n.input(1) == null ? null : ShapeInference.constantValue(n.input(1));
            if (n.input(1) != null && ratioT == null) {
                throw new OnnxException(n.describe() + ": the dropout ratio must be a constant to be seeded");
            }
            double ratio = ratioT == null ? 0.5 : ratioT.toDoubleArray()[0];
            Value x = n.input(0);
            DataType dt = GraphBuilder.elementType(x);
            Value shape = b.shape(x);
            Value idx = b.reshape(b.range(b.scalarInt(0), b.size(x), b.scalarInt(1)), shape);
            Value h = b.op("Mod", List.of(b.add(b.add(idx, seedTerm), b.scalarInt(1000003L * k % M)), mod));
            for (long c : ROUND_CONSTANTS) {
                h = b.op("Mod", List.of(b.add(b.mul(h, h), b.scalarInt(c)), mod));
                h = b.op("Mod", List.of(b.mul(h, b.scalarInt(48271)), mod));
            }
            Value keep = b.not(b.less(h, b.scalarInt((long) Math.ceil(ratio * M))));
            Value mode = n.input(2);
            Value scale = b.constant(dt, ratio >= 1 ? 0 : 1 / (1 - ratio));
            if (ShapeInference.constantValue(mode) == null) {
                keep = b.op("Or", List.of(b.not(mode), keep));
                scale = b.where(mode, scale, b.constant(dt, 1));
            }
            Value out = b.where(keep, b.mul(x, scale), b.constant(dt, 0));
            String outName = n.output(0).name();
            String maskName = n.output(1) == null ? null : n.output(1).name();
            graph.replaceAllUses(n.output(0), out);
            if (n.output(1) != null) {
                graph.replaceAllUses(n.output(1), keep);
            }
            graph.removeNode(n);
            out.rename(outName);
            if (maskName != null) {
                keep.rename(maskName);
            }
        }
        b.setScope(scope);
        graph.sortTopologically();
        return k;
    }

    private static boolean mayTrain(Node n) {
        Value mode = n.input(2);
        if (mode == null) {
            return false;
        }
        Tensor t = ShapeInference.constantValue(mode);
        return t == null || t.toDoubleArray()[0] != 0;
    }
}
