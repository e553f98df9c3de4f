package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Replaces training-mode {@code Dropout} nodes by masks computed from a seeded int64 graph input, so that a run can
 * be replayed and resumed exactly: the same seed (and graph) gives the same masks on any machine and thread count.
 *
 * <p><b>Why not ORT's RNG.</b> ONNX Runtime's Dropout and RandomUniformLike keep generator state inside the kernel
 * (a {@code seed} attribute fixes only the start of a stream that advances on every run), so step n's mask
 * depends on how many runs the session has made. Here the mask is a pure function of (seed, node, element).
 *
 * <p><b>Hash.</b> A counter-based hash in int64 arithmetic that never overflows: with the prime M = 2³¹ − 1,
 * x₀ = (i + 69069·(seed mod M) + salt_node) mod M for element index i, then three rounds of
 * x ← (x² + cᵣ) mod M; x ← 48271·x mod M (products stay below 2⁶²). u = x / M is uniform in [0, 1) to within
 * 2⁻³¹, and an element is kept when u ≥ ratio; kept elements are scaled by 1 / (1 − ratio), as Dropout does. The
 * engine feeds a new seed each step (e.g. derived from the run seed and the step number).
 */
public final class DeterministicDropout {
    /** Name of the int64 scalar seed input added to the graph. */
    public static final String SEED = "dropout_seed";
    private static final long M = 2147483647L;
    private static final long[] ROUND_CONSTANTS = {1013904223L, 1664525L, 362436069L};

    private DeterministicDropout() {
    }

    /** Rewrites every Dropout that may run in training mode; returns how many were replaced. */
    public static int apply(Graph graph, int opset) {
        List<Node> dropouts = new ArrayList<>();
        for (Node n : graph.nodes()) {
            if (n.domain().isEmpty() && n.opType().equals("Dropout") && ElementwiseGradients.dropoutMayTrain(n)) {
                dropouts.add(n);
            }
        }
        if (dropouts.isEmpty()) {
            return 0;
        }
        GraphBuilder b = new GraphBuilder(graph, opset);
        Value seed = graph.value(SEED) != null ? graph.value(SEED) : b.input(SEED, TensorType.of(DataType.INT64));
        b.setScope("dropout_mask");
        Value mod = b.scalarInt(M);
        Value seedTerm = b.mul(b.op("Mod", List.of(seed, mod)), b.scalarInt(69069));
        int index = 0;
        for (Node n : dropouts) {
            index++;
            Value x = n.input(0);
            DataType t = GraphBuilder.elementType(x);
            Value positions = b.reshape(b.range(b.scalarInt(0), b.size(x), b.scalarInt(1)), b.shape(x));
            Value h = b.op("Mod", List.of(b.add(b.add(positions, seedTerm), b.scalarInt(index * 1000003L % M)),
                    mod));
            for (long c : ROUND_CONSTANTS) {
                h = b.op("Mod", List.of(b.add(b.mul(h, h), b.scalarInt(c)), mod));
                h = b.op("Mod", List.of(b.mul(h, b.scalarInt(48271)), mod));
            }
            Value u = b.div(b.cast(h, DataType.DOUBLE), b.constant(DataType.DOUBLE, M));
            Value ratio = n.input(1);
            Tensor rc = ratio == null ? Tensor.scalar(0.5) : ShapeInference.constantValue(ratio);
            Value keep;
            Value scale;
            if (rc != null) {
                double r = rc.toDoubleArray()[0];
                keep = b.not(b.less(u, b.constant(DataType.DOUBLE, r)));
                scale = b.constant(t, r >= 1 ? 0 : 1 / (1 - r));
            } else {
                keep = b.not(b.less(u, b.cast(ratio, DataType.DOUBLE)));
                Value rt = b.cast(ratio, t);
                scale = b.div(b.constant(t, 1), b.sub(b.constant(t, 1), rt));
            }
            Value mode = n.input(2);
            if (ShapeInference.constantValue(mode) == null) {
                keep = b.op("Or", List.of(b.not(mode), keep));
                scale = b.where(mode, scale, b.constant(t, 1));
            }
            Value y = b.where(keep, b.mul(x, scale), b.constant(t, 0));
            String yName = n.output(0).name();
            String maskName = n.output(1) == null ? null : n.output(1).name();
            graph.replaceAllUses(n.output(0), y);
            if (n.output(1) != null) {
                graph.replaceAllUses(n.output(1), keep);
            }
            graph.removeNode(n);
            // keep the names readers and graph outputs knew
            y.rename(yName);
            if (maskName != null) {
                keep.rename(maskName);
            }
        }
        b.setScope("");
        graph.sortTopologically();
        return dropouts.size();
    }
}
