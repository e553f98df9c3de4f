package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** Rules for ops that move, select or reduce elements. */
final class ShapeRules {
    private ShapeRules() {
    }

    static void register(Map<String, GradientRule> r) {
        GradientRule reshapeBack = c -> c.grads(c.reshapeLike(c.outputGrad(0), c.input(0)));
        r.put("Reshape", reshapeBack);
        r.put("Flatten", reshapeBack);
        r.put("Squeeze", reshapeBack);
        r.put("Unsqueeze", reshapeBack);
        r.put("Transpose", c -> {
            long[] perm = c.node().intsAttr("perm", null);
            int rank = c.input(0).type().rank();
            long[] inverse = new long[rank];
            for (int i = 0; i < rank; i++) {
                int p = perm == null ? rank - 1 - i : (int) perm[i];
                inverse[p] = i;
            }
            return c.grads(c.builder().transpose(c.outputGrad(0), inverse));
        });
        r.put("Concat", ShapeRules::concat);
        r.put("Split", ShapeRules::split);
        r.put("Slice", ShapeRules::slice);
        r.put("Gather", ShapeRules::gather);
        r.put("GatherElements", c -> {
            GraphBuilder b = c.builder();
            Value zeros = zerosLike(c, c.input(0));
            Value g = b.op("ScatterElements", List.of(zeros, c.input(1), c.outputGrad(0)),
                    Attribute.of("axis", c.node().intAttr("axis", 0)), Attribute.of("reduction", "add"));
            return c.grads(g, null);
        });
        r.put("ReduceSum", c -> reduce(c, false));
        r.put("ReduceMean", c -> reduce(c, true));
    }

    static Value zerosLike(GradContext c, Value v) {
        GraphBuilder b = c.builder();
        Value z = b.constantOfShape(b.shape(v), Tensor.fromDoubles(c.dtype(v), new double[] {0}, 1));
        z.setType(v.type());
        return z;
    }

    private static List<Value> concat(GradContext c) {
        GraphBuilder b = c.builder();
        int n = c.node().inputCount();
        int rank = c.output(0).type().rank();
        long axis = c.node().intAttr("axis", 0);
        axis = axis < 0 ? axis + rank : axis;
        long[] sizes = new long[n];
        boolean known = true;
        for (int i = 0; i < n; i++) {
            var d = c.input(i).type().dims().get((int) axis);
            known &= d.isFixed();
            sizes[i] = d.isFixed() ? d.value() : -1;
        }
        List<Value> parts;
        if (known) {
            parts = b.split(c.outputGrad(0), axis, sizes);
        } else {
            List<Value> sizeValues = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                sizeValues.add(b.shape(c.input(i), axis, axis + 1));
            }
            Value splitSizes = b.concat(sizeValues, 0);
            parts = b.node("Split", "", List.of(c.outputGrad(0), splitSizes), n, Attribute.of("axis", axis))
                    .outputs();
        }
        List<Value> grads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            grads.add(c.needs(i) ? parts.get(i) : null);
        }
        return grads;
    }

    private static List<Value> split(GradContext c) {
        List<Value> pieces = new ArrayList<>();
        for (int i = 0; i < c.node().outputs().size(); i++) {
            if (c.output(i) == null) {
                throw new OnnxException("cannot differentiate " + c.node().describe()
                        + ": it has an absent output " + i);
            }
            pieces.add(c.outputGradOrZeros(i));
        }
        long axis = c.node().intAttr("axis", 0);
        List<Value> grads = new ArrayList<>();
        grads.add(c.builder().concat(pieces, axis));
        return c.grads(grads.get(0), null);
    }

    /**
     * Slice is linear and picks distinct elements, so its adjoint scatters the gradient back: slice a tensor of flat
     * element indices the same way, then ScatterElements the gradient into zeros. Handles steps and negative
     * indices exactly as the forward op does.
     */
    private static List<Value> slice(GradContext c) {
        GraphBuilder b = c.builder();
        Value x = c.input(0);
        Value shape = b.shape(x);
        Value count = b.reduceProd(shape);
        Value flatIdx = b.range(b.scalarInt(0), count, b.scalarInt(1));
        Value idx = b.reshape(flatIdx, shape);
        List<Value> sliceInputs = new ArrayList<>(c.node().inputs());
        sliceInputs.set(0, idx);
        while (sliceInputs.get(sliceInputs.size() - 1) == null) {
            sliceInputs.remove(sliceInputs.size() - 1);
        }
        Value picked = b.op("Slice", sliceInputs);
        Value zeros = b.reshape(zerosLike(c, x), -1);
        Value scattered = b.op("ScatterElements", List.of(zeros, b.reshape(picked, -1),
                b.reshape(c.outputGrad(0), -1)), Attribute.of("axis", 0L));
        Value g = b.reshape(scattered, shape);
        g.setType(x.type());
        return c.grads(g, null, null, null, null);
    }

    /** Gather's data gradient: ScatterND with reduction=add, so repeated indices accumulate. */
    private static List<Value> gather(GradContext c) {
        GraphBuilder b = c.builder();
        Value data = c.input(0);
        Value indices = c.input(1);
        int rank = data.type().rank();
        long axis = c.node().intAttr("axis", 0);
        axis = axis < 0 ? axis + rank : axis;
        Value g = c.outputGrad(0);
        int idxRank = indices.type().rank();
        Value idx = c.dtype(indices) == DataType.INT64 ? indices : b.cast(indices, DataType.INT64);
        // Negative indices count from the end, as in the forward op.
        Value dim = b.shape(data, axis, axis + 1);
        idx = b.where(b.less(idx, b.scalarInt(0)), b.add(idx, dim), idx);
        if (axis == 0) {
            Value zeros = zerosLike(c, data);
            Value res = b.op("ScatterND", List.of(zeros, b.unsqueeze(idx, -1), g),
                    Attribute.of("reduction", "add"));
            res.setType(data.type());
            return c.grads(res, null);
        }
        // Move the gathered axis to the front on both sides, scatter, and move it back.
        long[] dataPerm = new long[rank];
        dataPerm[0] = axis;
        for (int i = 0, j = 1; i < rank; i++) {
            if (i != axis) {
                dataPerm[j++] = i;
            }
        }
        int gRank = rank - 1 + idxRank;
        long[] gPerm = new long[gRank];
        int j = 0;
        for (int i = 0; i < idxRank; i++) {
            gPerm[j++] = axis + i;
        }
        for (int i = 0; i < axis; i++) {
            gPerm[j++] = i;
        }
        for (int i = (int) axis + idxRank; i < gRank; i++) {
            gPerm[j++] = i;
        }
        Value zerosT = b.transpose(zerosLike(c, data), dataPerm);
        Value gT = b.transpose(g, gPerm);
        Value res = b.op("ScatterND", List.of(zerosT, b.unsqueeze(idx, -1), gT), Attribute.of("reduction", "add"));
        long[] back = new long[rank];
        for (int i = 0; i < rank; i++) {
            back[(int) dataPerm[i]] = i;
        }
        Value out = b.transpose(res, back);
        out.setType(data.type());
        return c.grads(out, null);
    }

    private static List<Value> reduce(GradContext c, boolean mean) {
        GraphBuilder b = c.builder();
        Value x = c.input(0);
        int rank = x.type().rank();
        long[] axes;
        if (c.node().inputCount() > 1 && c.input(1) != null) {
            axes = c.constantInts(1, "axes");
        } else {
            axes = c.node().intsAttr("axes", null);
        }
        boolean noop = c.node().intAttr("noop_with_empty_axes", 0) != 0;
        if (axes == null || axes.length == 0) {
            if (noop) {
                return c.grads(c.outputGrad(0), null);
            }
            axes = new long[rank];
            for (int i = 0; i < rank; i++) {
                axes[i] = i;
            }
        }
        axes = GradContext.normalizeAxes(axes, rank);
        Value g = c.outputGrad(0);
        if (c.node().intAttr("keepdims", 1) == 0) {
            g = b.unsqueeze(g, axes);
        }
        Value expanded = b.expand(g, b.shape(x));
        expanded.setType(x.type());
        if (!mean) {
            return c.grads(expanded, null);
        }
        long n = 1;
        boolean known = true;
        for (long a : axes) {
            var d = x.type().dims().get((int) a);
            known &= d.isFixed();
            n *= d.isFixed() ? d.value() : 1;
        }
        Value count;
        if (known) {
            count = c.scalar(x, n);
        } else {
            Value sizes = b.gather(b.shape(x), b.ints(axes), 0);
            count = b.cast(b.reduceProd(sizes), c.dtype(x));
        }
        return c.grads(b.div(expanded, count), null);
    }

    static long[] range(int n) {
        long[] r = new long[n];
        Arrays.setAll(r, i -> i);
        return r;
    }
}
