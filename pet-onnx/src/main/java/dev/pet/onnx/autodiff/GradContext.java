package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** What a {@link GradientRule} sees: the forward node, its output gradients, and helpers for common patterns. */
public final class GradContext {
    private final Node node;
    private final List<Value> outputGrads;
    private final boolean[] needs;
    private final GraphBuilder b;

    GradContext(Node node, List<Value> outputGrads, boolean[] needs, GraphBuilder b) {
        this.node = node;
        this.outputGrads = outputGrads;
        this.needs = needs;
        this.b = b;
    }

    public Node node() {
        return node;
    }

    public GraphBuilder builder() {
        return b;
    }

    public Value input(int i) {
        return node.input(i);
    }

    public Value output(int i) {
        return node.output(i);
    }

    /** Gradient flowing into output {@code i}, or null when nothing downstream needs it. */
    public Value outputGrad(int i) {
        return i < outputGrads.size() ? outputGrads.get(i) : null;
    }

    /** Gradient of output {@code i}, or zeros shaped like that output when nothing flows into it. */
    public Value outputGradOrZeros(int i) {
        Value g = outputGrad(i);
        if (g != null) {
            return g;
        }
        Value out = output(i);
        return b.constantOfShape(b.shape(out), Tensor.fromDoubles(dtype(out), new double[] {0}, 1));
    }

    /** Whether input {@code i} needs a gradient. */
    public boolean needs(int i) {
        return i < needs.length && needs[i];
    }

    public DataType dtype(Value v) {
        return GraphBuilder.elementType(v);
    }

    /** A scalar constant of {@code like}'s element type. */
    public Value scalar(Value like, double v) {
        return b.constant(dtype(like), v);
    }

    /**
     * Sums a gradient shaped like the (broadcast) output down to {@code input}'s shape: leading axes the input lacks
     * are summed away, axes where the input has size 1 are summed with keepdims. Works from ranks and fixed sizes; a
     * symbolic input dimension is taken to match the output (ONNX broadcasting only stretches size-1 dims).
     */
    public Value reduceTo(Value grad, Value input) {
        TensorType gt = grad.type();
        TensorType it = input.type();
        if (!gt.hasRank() || !it.hasRank()) {
            return reduceToDynamic(grad, input);
        }
        int extra = gt.rank() - it.rank();
        if (extra < 0) {
            throw new OnnxException("gradient of rank " + gt.rank() + " cannot reduce to input '" + input.name()
                    + "' of rank " + it.rank());
        }
        Value g = grad;
        if (extra > 0) {
            long[] axes = new long[extra];
            for (int i = 0; i < extra; i++) {
                axes[i] = i;
            }
            g = b.reduceSum(g, axes, false);
        }
        List<Long> ones = new ArrayList<>();
        for (int i = 0; i < it.rank(); i++) {
            Dim in = it.dims().get(i);
            Dim out = gt.dims().get(i + extra);
            if (in.isFixed() && in.value() == 1 && !(out.isFixed() && out.value() == 1)) {
                ones.add((long) i);
            }
        }
        if (!ones.isEmpty()) {
            g = b.reduceSum(g, ones.stream().mapToLong(Long::longValue).toArray(), true);
        }
        return g;
    }

    /** Without ranks the broadcast axes cannot be chosen; say which value lacks a shape. */
    private Value reduceToDynamic(Value grad, Value input) {
        throw new OnnxException("cannot differentiate " + node.describe() + ": the rank of '"
                + (grad.type().hasRank() ? input.name() : grad.name()) + "' is unknown; give the graph input a "
                + "declared shape or run shape inference first");
    }

    /** Reshapes {@code grad} to {@code like}'s shape (static when known, else through Shape). */
    public Value reshapeLike(Value grad, Value like) {
        TensorType t = like.type();
        if (t.isStatic()) {
            return b.reshape(grad, t.shape());
        }
        return b.reshape(grad, b.shape(like));
    }

    /** Swaps the last two axes of a value of rank >= 2. */
    public Value transposeLast2(Value v) {
        int r = v.type().rank();
        long[] perm = new long[r];
        for (int i = 0; i < r; i++) {
            perm[i] = i;
        }
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return b.transpose(v, perm);
    }

    /** Constant int64 values of a node input, failing clearly when the input is not constant. */
    public long[] constantInts(int i, String what) {
        long[] v = ShapeInference.constantInts(input(i));
        if (v == null) {
            throw new OnnxException("cannot differentiate " + node.describe() + ": its " + what
                    + " must be a constant");
        }
        return v;
    }

    /** Normalised axes (non-negative) for a rank. */
    public static long[] normalizeAxes(long[] axes, int rank) {
        long[] out = new long[axes.length];
        for (int i = 0; i < axes.length; i++) {
            out[i] = axes[i] < 0 ? axes[i] + rank : axes[i];
        }
        Arrays.sort(out);
        return out;
    }

    /** A list of gradients with the given entries at the given positions. */
    public List<Value> grads(Value... perInput) {
        List<Value> l = new ArrayList<>(Arrays.asList(perInput));
        for (int i = 0; i < l.size(); i++) {
            if (!needs(i)) {
                l.set(i, null);
            }
        }
        return l;
    }
}
