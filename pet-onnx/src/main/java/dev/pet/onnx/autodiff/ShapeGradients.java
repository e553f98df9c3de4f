package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.ArrayList;
import java.util.List;

/** Ops that move data without arithmetic: reshapes, Transpose, Split, Slice, Concat, Expand. */
final class ShapeGradients {
    private ShapeGradients() {
    }

    static void register(GradientRegistry r) {
        GradientRule reshapeBack = (n, c) -> c.propagate(n.input(0), () -> c.reshapeLike(c.grad(n, 0), n.input(0)));
        for (String op : List.of("Reshape", "Flatten", "Squeeze", "Unsqueeze")) {
            r.register(op, reshapeBack);
        }
        r.register("Transpose", (n, c) -> c.propagate(n.input(0), () -> {
            int rank = GradientContext.rank(n.input(0));
            long[] perm = n.intsAttr("perm", null);
            long[] inverse = new long[rank];
            for (int i = 0; i < rank; i++) {
                inverse[(int) (perm == null ? rank - 1 - i : perm[i])] = i;
            }
            return c.builder().transpose(c.grad(n, 0), inverse);
        }));
        r.register("Expand", (n, c) -> c.propagate(n.input(0),
                () -> c.unbroadcast(c.grad(n, 0), n.input(0), n.output(0).type())));
        r.register("Split", ShapeGradients::split);
        r.register("Concat", ShapeGradients::concat);
        r.register("Slice", ShapeGradients::slice);
    }

    private static void split(Node n, GradientContext c) {
        c.propagate(n.input(0), () -> {
            int axis = GradientContext.axis(n.intAttr("axis", 0), GradientContext.rank(n.input(0)));
            List<Value> parts = new ArrayList<>();
            for (Value out : n.outputs()) {
                Value g = c.grad(out);
                parts.add(g != null ? g : c.zeros(out));
            }
            return parts.size() == 1 ? parts.get(0) : c.builder().concat(parts, axis);
        });
    }

    private static void concat(Node n, GradientContext c) {
        GraphBuilder b = c.builder();
        Value g = c.grad(n, 0);
        int axis = GradientContext.axis(n.intAttr("axis", 0), GradientContext.rank(n.output(0)));
        boolean needed = false;
        for (Value in : n.inputs()) {
            needed |= c.needs(in);
        }
        if (!needed) {
            return;
        }
        long[] sizes = new long[n.inputCount()];
        boolean fixed = true;
        for (int i = 0; i < n.inputCount(); i++) {
            Dim d = n.input(i).type().hasRank() ? n.input(i).type().dims().get(axis) : Dim.unknown();
            fixed &= d.isFixed();
            sizes[i] = d.isFixed() ? d.value() : -1;
        }
        Value splitSizes;
        if (fixed) {
            splitSizes = c.ints(sizes);
        } else {
            List<Value> dims = new ArrayList<>();
            for (Value in : n.inputs()) {
                dims.add(c.dimOf(in, axis));
            }
            splitSizes = b.concat(dims, 0);
        }
        List<Value> pieces = n.inputCount() == 1 ? List.of(g)
                : b.node("Split", "", List.of(g, splitSizes), n.inputCount(), Attribute.of("axis", (long) axis))
                        .outputs();
        for (int i = 0; i < n.inputCount(); i++) {
            Value piece = pieces.get(i);
            c.propagate(n.input(i), () -> piece);
        }
    }

    private static void slice(Node n, GradientContext c) {
        Value x = n.input(0);
        c.propagate(x, () -> {
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            int r = GradientContext.rank(x);
            long[] starts = ShapeInference.constantInts(n.input(1));
            long[] ends = ShapeInference.constantInts(n.input(2));
            long[] axes = n.input(3) == null ? null : ShapeInference.constantInts(n.input(3));
            long[] steps = n.input(4) == null ? null : ShapeInference.constantInts(n.input(4));
            if (n.input(3) != null && axes == null) {
                throw new OnnxException(n.describe() + ": the gradient of Slice needs constant axes");
            }
            int count = axes != null ? axes.length : starts != null ? starts.length
                    : lengthOf(n.input(1), n);
            int[] ax = new int[count];
            for (int i = 0; i < count; i++) {
                ax[i] = GradientContext.axis(axes == null ? i : axes[i], r);
            }
            boolean unitSteps = n.input(4) == null || (steps != null && allOnes(steps));
            boolean staticDims = true;
            for (int a : ax) {
                staticDims &= x.type().dims().get(a).isFixed();
            }
            if (unitSteps && staticDims && starts != null && ends != null) {
                // Pad the gradient back with zeros around the slice.
                long[] pads = new long[2 * r];
                for (int i = 0; i < count; i++) {
                    long dim = x.type().dims().get(ax[i]).value();
                    long s = clamp(starts[i] < 0 ? starts[i] + dim : starts[i], dim);
                    long e = Math.max(s, clamp(ends[i] < 0 ? ends[i] + dim : ends[i], dim));
                    pads[ax[i]] = s;
                    pads[r + ax[i]] = dim - e;
                }
                return b.op("Pad", List.of(g, c.ints(pads)));
            }
            // General case (steps, computed bounds or sizes): scatter each sliced axis back in turn, with the
            // source positions obtained by slicing a Range of the axis the same way as the forward op.
            Value cur = g;
            for (int i = 0; i < count; i++) {
                int a = ax[i];
                Value dim = c.dimOf(x, a);
                Value positions = b.range(b.scalarInt(0), b.squeeze(dim, 0), b.scalarInt(1));
                Value idx = b.slice(positions, element(c, n.input(1), starts, i), element(c, n.input(2), ends, i),
                        c.ints(0), n.input(4) == null ? c.ints(1) : element(c, n.input(4), steps, i));
                long[] view = new long[r];
                java.util.Arrays.fill(view, 1);
                view[a] = -1;
                Value curShape = b.shape(cur);
                Value indices = b.expand(b.reshape(idx, c.ints(view)), curShape);
                List<Value> fullParts = new ArrayList<>();
                if (a > 0) {
                    fullParts.add(b.shape(cur, 0, a));
                }
                fullParts.add(dim);
                if (a < r - 1) {
                    fullParts.add(b.shape(cur, a + 1, r));
                }
                Value full = fullParts.size() == 1 ? fullParts.get(0) : b.concat(fullParts, 0);
                cur = b.op("ScatterElements", List.of(c.zeros(full, GradientContext.floatType(x)), indices, cur),
                        Attribute.of("axis", (long) a));
            }
            return cur;
        });
    }

    private static int lengthOf(Value v, Node n) {
        if (v.type().isStatic() && v.type().rank() == 1) {
            return (int) v.type().shape()[0];
        }
        throw new OnnxException(n.describe() + ": the gradient of Slice needs the number of sliced axes");
    }

    private static Value element(GradientContext c, Value v, long[] constant, int i) {
        if (constant != null) {
            return c.ints(constant[i]);
        }
        return c.builder().slice(v, new long[] {i}, new long[] {i + 1}, new long[] {0}, null);
    }

    private static boolean allOnes(long[] v) {
        for (long s : v) {
            if (s != 1) {
                return false;
            }
        }
        return true;
    }

    private static long clamp(long v, long dim) {
        return Math.max(0, Math.min(dim, v));
    }
}
