package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.Arrays;
import java.util.List;

/**
 * ReduceSum, ReduceMean and ReduceSumSquare, with axes as attribute or input (constant or computed) and either
 * keepdims.
 */
final class ReductionGradients {
    private ReductionGradients() {
    }

    static void register(GradientRegistry r) {
        r.register("ReduceSum", (n, c) -> reduce(n, c, false));
        r.register("ReduceMean", (n, c) -> reduce(n, c, true));
        r.register("ReduceSumSquare", ReductionGradients::sumSquare);
    }

    /**
     * d Σx² = 2x·g, with g broadcast back over the reduced axes: one pass over x, where ReduceMean(x·x) needs an
     * expanded copy of g and two products (RMSNorm's statistic, once per norm).
     */
    private static void sumSquare(Node n, GradientContext c) {
        Value x = n.input(0);
        c.propagate(x, () -> {
            GraphBuilder b = c.builder();
            Value gk = keptDims(n, c, c.grad(n, 0));
            // g has size 1 on the reduced axes (or is a scalar), so the product has exactly x's shape
            return b.mul(x, b.mul(gk, c.scalarLike(x, 2)));
        });
    }

    /** The gradient of a reduction with its reduced axes restored as size 1 (broadcastable against the input). */
    private static Value keptDims(Node n, GradientContext c, Value g) {
        boolean keep = n.intAttr("keepdims", 1) != 0;
        if (keep) {
            return g;
        }
        Value axesInput = n.input(1);
        long[] axes = axesInput != null ? ShapeInference.constantInts(axesInput) : n.intsAttr("axes", null);
        if (axesInput != null && axes == null) {
            return c.builder().op("Unsqueeze", List.of(g, axesInput));
        }
        if (axes == null || axes.length == 0) {
            return g; // every axis: a scalar broadcasts as it is
        }
        int r = GradientContext.rank(n.input(0));
        long[] norm = new long[axes.length];
        for (int i = 0; i < axes.length; i++) {
            norm[i] = GradientContext.axis(axes[i], r);
        }
        Arrays.sort(norm);
        return c.builder().op("Unsqueeze", List.of(g, c.ints(norm)));
    }

    private static void reduce(Node n, GradientContext c, boolean mean) {
        Value x = n.input(0);
        c.propagate(x, () -> {
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            Value y = n.output(0);
            boolean keep = n.intAttr("keepdims", 1) != 0;
            boolean noop = n.intAttr("noop_with_empty_axes", 0) != 0;
            Value axesInput = n.input(1);
            long[] axes = axesInput != null ? ShapeInference.constantInts(axesInput) : n.intsAttr("axes", null);
            boolean dynamicAxes = axesInput != null && axes == null;
            boolean all = false;
            if (!dynamicAxes && (axes == null || axes.length == 0)) {
                if (noop) {
                    return g;
                }
                all = true;
            }
            Value gk = g;
            if (!keep && !all) {
                // (reducing every axis without keepdims gives a scalar, which Expand broadcasts as it is)
                if (dynamicAxes) {
                    gk = b.op("Unsqueeze", List.of(g, axesInput));
                } else {
                    int r = GradientContext.rank(x);
                    long[] norm = new long[axes.length];
                    for (int i = 0; i < axes.length; i++) {
                        norm[i] = GradientContext.axis(axes[i], r);
                    }
                    Arrays.sort(norm);
                    gk = norm.length == 0 ? g : b.op("Unsqueeze", List.of(g, c.ints(norm)));
                }
            }
            if (mean) {
                DataType t = GradientContext.floatType(x);
                TensorType xt = x.type();
                TensorType yt = y.type();
                Value scale;
                long reduced = reducedCount(xt, axes, all, dynamicAxes);
                if (reduced > 0) {
                    scale = c.scalar(t, 1.0 / reduced);
                } else if (xt.isStatic() && yt.isStatic()) {
                    long nx = Math.max(1, count(xt.shape()));
                    long ny = Math.max(1, count(yt.shape()));
                    scale = c.scalar(t, (double) ny / nx);
                } else {
                    // max(size(y), 1): an empty input (a loss chunk of no rows) must not divide by zero
                    Value count = b.div(b.size(x), b.max(b.size(y), c.builder().scalarInt(1)));
                    scale = b.div(c.scalar(t, 1), b.cast(count, t));
                }
                gk = b.mul(gk, scale);
            }
            if (x.type().isStatic() && gk.type().isStatic()
                    && Arrays.equals(x.type().shape(), gk.type().shape())) {
                return gk;
            }
            return b.expand(gk, c.shapeOf(x));
        });
    }

    /** Elements per reduced group when the reduced axes have fixed sizes (the rows may vary), else -1. */
    private static long reducedCount(TensorType xt, long[] axes, boolean all, boolean dynamicAxes) {
        if (dynamicAxes || all || axes == null || !xt.hasRank()) {
            return -1;
        }
        long p = 1;
        for (long a : axes) {
            var d = xt.dims().get(GradientContext.axis(a, xt.rank()));
            if (!d.isFixed()) {
                return -1;
            }
            p *= d.value();
        }
        return p;
    }

    private static long count(long[] shape) {
        long p = 1;
        for (long s : shape) {
            p *= s;
        }
        return p;
    }
}
