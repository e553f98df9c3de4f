package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.anyShape;
import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import java.util.ArrayList;
import java.util.List;

/**
 * Shape rules of ops that move or regroup elements: Reshape, Flatten, Transpose, Unsqueeze, Squeeze, Concat, Split,
 * Slice, Expand, Pad. Several took their integer lists as attributes before an opset moved them to inputs:
 * Unsqueeze, Squeeze and Split at 13, Slice at 10, Pad at 11.
 */
final class MovementShapes {
    private MovementShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("Reshape", (n, opset) -> one(reshape(n, in(n, 0))));
        r.register("Flatten", MovementShapes::flatten);
        r.register("Transpose", MovementShapes::transpose);
        r.register("Unsqueeze", (n, opset) -> one(unsqueeze(in(n, 0), n.intsAttr("axes", null))));
        r.register("Unsqueeze", 13, (n, opset) -> one(unsqueeze(in(n, 0), Shapes.inputInts(n, 1))));
        r.register("Squeeze", (n, opset) -> one(squeeze(in(n, 0), n.intsAttr("axes", null), false)));
        r.register("Squeeze", 13, (n, opset) -> one(squeeze(in(n, 0), Shapes.inputInts(n, 1),
                Shapes.dynamicInput(n, 1))));
        r.register("Concat", MovementShapes::concat);
        r.register("Split", (n, opset) -> split(n, n.intsAttr("split", null)));
        r.register("Split", 13, (n, opset) -> split(n, Shapes.inputInts(n, 1)));
        r.register("Slice", (n, opset) -> one(slice(in(n, 0), n.intsAttr("starts", null), n.intsAttr("ends", null),
                n.intsAttr("axes", null), null, false)));
        r.register("Slice", 10, (n, opset) -> one(slice(in(n, 0), Shapes.inputInts(n, 1), Shapes.inputInts(n, 2),
                Shapes.inputInts(n, 3), Shapes.inputInts(n, 4), Shapes.dynamicInput(n, 3)
                        || Shapes.dynamicInput(n, 4))));
        r.register("Expand", MovementShapes::expand);
        r.register("Pad", 2, (n, opset) -> one(pad(in(n, 0), n.intsAttr("pads", null), false)));
        r.register("Pad", 11, (n, opset) -> one(pad(in(n, 0), Shapes.inputInts(n, 1),
                n.inputCount() > 3 && n.input(3) != null)));
    }

    private static TensorType reshape(Node n, TensorType x) {
        long[] shape = ShapeInference.constantInts(n.input(1));
        if (shape == null) {
            TensorType s = in(n, 1);
            if (s.isStatic() && s.rank() == 1) {
                return new TensorType(x.dataType(), Shapes.unknownDims(s.shape()[0]));
            }
            return anyShape(x.dataType());
        }
        boolean allowZero = n.intAttr("allowzero", 0) != 0;
        List<Dim> d = new ArrayList<>();
        int inferIdx = -1;
        for (int i = 0; i < shape.length; i++) {
            long s = shape[i];
            if (s == -1) {
                inferIdx = i;
                d.add(Dim.unknown());
            } else if (s == 0 && !allowZero) {
                d.add(x.hasRank() && i < x.rank() ? x.dims().get(i) : Dim.unknown());
            } else {
                d.add(Dim.of(s));
            }
        }
        if (inferIdx >= 0 && x.hasRank()) {
            // The element count over the other output dims; symbolic when the dims are (rows = batch*sequence).
            List<Dim> others = new ArrayList<>(d);
            others.remove(inferIdx);
            d.set(inferIdx, Shapes.quotient(Shapes.product(x.dims()), Shapes.product(others)));
        }
        return new TensorType(x.dataType(), d);
    }

    private static List<TensorType> flatten(Node n, int opset) {
        TensorType x = in(n, 0);
        if (!x.hasRank()) {
            return one(anyShape(x.dataType()));
        }
        int a = Shapes.axis(n.intAttr("axis", 1), x.rank());
        return one(new TensorType(x.dataType(), List.of(Shapes.product(x.dims().subList(0, a)),
                Shapes.product(x.dims().subList(a, x.rank())))));
    }

    private static List<TensorType> transpose(Node n, int opset) {
        TensorType x = in(n, 0);
        if (!x.hasRank()) {
            return one(anyShape(x.dataType()));
        }
        long[] perm = n.intsAttr("perm", null);
        List<Dim> d = new ArrayList<>();
        for (int i = 0; i < x.rank(); i++) {
            d.add(x.dims().get(perm == null ? x.rank() - 1 - i : (int) perm[i]));
        }
        return one(new TensorType(x.dataType(), d));
    }

    private static TensorType unsqueeze(TensorType x, long[] axes) {
        if (axes == null || !x.hasRank()) {
            return anyShape(x.dataType());
        }
        int r = x.rank() + axes.length;
        boolean[] isNew = new boolean[r];
        for (long a : axes) {
            isNew[Shapes.axis(a, r)] = true;
        }
        List<Dim> d = new ArrayList<>();
        int j = 0;
        for (int i = 0; i < r; i++) {
            d.add(isNew[i] ? Dim.of(1) : x.dims().get(j++));
        }
        return new TensorType(x.dataType(), d);
    }

    /** {@code axes} null: every dimension of size 1 (unless the axes are a non-constant input). */
    private static TensorType squeeze(TensorType x, long[] axes, boolean axesUnknown) {
        if (!x.hasRank() || axesUnknown) {
            return anyShape(x.dataType());
        }
        List<Dim> d = new ArrayList<>();
        for (int i = 0; i < x.rank(); i++) {
            boolean drop = false;
            if (axes == null) {
                drop = x.dims().get(i).isFixed() && x.dims().get(i).value() == 1;
            } else {
                for (long a : axes) {
                    drop |= Shapes.axis(a, x.rank()) == i;
                }
            }
            if (!drop) {
                d.add(x.dims().get(i));
            }
        }
        return new TensorType(x.dataType(), d);
    }

    private static List<TensorType> concat(Node n, int opset) {
        TensorType x = in(n, 0);
        if (!x.hasRank()) {
            return one(anyShape(x.dataType()));
        }
        int a = Shapes.axis(n.intAttr("axis", 0), x.rank());
        List<Dim> d = new ArrayList<>(x.dims());
        long total = 0;
        boolean known = true;
        for (Value v : n.inputs()) {
            if (v == null || !v.type().hasRank() || !v.type().dims().get(a).isFixed()) {
                known = false;
                break;
            }
            total += v.type().dims().get(a).value();
        }
        d.set(a, known ? Dim.of(total) : Dim.unknown());
        return one(new TensorType(x.dataType(), d));
    }

    /** {@code sizes} null: equal parts, one per output. */
    private static List<TensorType> split(Node n, long[] sizes) {
        TensorType x = in(n, 0);
        int count = n.outputs().size();
        List<TensorType> outs = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            if (!x.hasRank()) {
                outs.add(anyShape(x.dataType()));
                continue;
            }
            int a = Shapes.axis(n.intAttr("axis", 0), x.rank());
            List<Dim> d = new ArrayList<>(x.dims());
            Dim whole = x.dims().get(a);
            if (sizes != null) {
                d.set(a, Dim.of(sizes[i]));
            } else if (whole.isFixed() && whole.value() % count == 0) {
                d.set(a, Dim.of(whole.value() / count));
            } else {
                d.set(a, Dim.unknown());
            }
            outs.add(new TensorType(x.dataType(), d));
        }
        return outs;
    }

    /**
     * {@code starts}/{@code ends} null when not constant; {@code axes}/{@code steps} null when absent (all axes in
     * order, step 1) and {@code axesOrStepsUnknown} when given but not constant.
     */
    private static TensorType slice(TensorType x, long[] starts, long[] ends, long[] axes, long[] steps,
            boolean axesOrStepsUnknown) {
        if (!x.hasRank()) {
            return anyShape(x.dataType());
        }
        List<Dim> d = new ArrayList<>(x.dims());
        if (starts == null || ends == null || axesOrStepsUnknown) {
            if (axes != null) {
                for (long a : axes) {
                    d.set(Shapes.axis(a, x.rank()), Dim.unknown());
                }
                return new TensorType(x.dataType(), d);
            }
            return new TensorType(x.dataType(), Shapes.unknownDims(x.rank()));
        }
        for (int i = 0; i < starts.length; i++) {
            int a = axes == null ? i : Shapes.axis(axes[i], x.rank());
            long step = steps == null ? 1 : steps[i];
            Dim dim = x.dims().get(a);
            d.set(a, dim.isFixed() ? Dim.of(ShapeInference.sliceLength(dim.value(), starts[i], ends[i], step))
                    : Dim.unknown());
        }
        return new TensorType(x.dataType(), d);
    }

    private static List<TensorType> expand(Node n, int opset) {
        TensorType x = in(n, 0);
        long[] shape = ShapeInference.constantInts(n.input(1));
        if (shape == null || !x.hasRank()) {
            return one(anyShape(x.dataType()));
        }
        return one(ShapeInference.broadcast(x, TensorType.of(x.dataType(), shape)));
    }

    /** {@code pads} [begin..., end...]; with an {@code axes} input only the rank is kept. */
    private static TensorType pad(TensorType x, long[] pads, boolean hasAxes) {
        if (!x.hasRank()) {
            return anyShape(x.dataType());
        }
        List<Dim> d = new ArrayList<>();
        for (int i = 0; i < x.rank(); i++) {
            Dim di = x.dims().get(i);
            d.add(pads != null && pads.length == 2 * x.rank() && !hasAxes && di.isFixed()
                    ? Dim.of(di.value() + pads[i] + pads[i + x.rank()]) : Dim.unknown());
        }
        return new TensorType(x.dataType(), d);
    }
}
