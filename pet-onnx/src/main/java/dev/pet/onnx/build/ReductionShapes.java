package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.anyShape;
import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Shape rules of the Reduce ops and ArgMax/ArgMin. The reduced axes are an attribute until an op's opset moved
 * them to an input: 13 for ReduceSum, 18 for the others.
 */
final class ReductionShapes {
    private ReductionShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("ReduceSum", (n, opset) -> one(reduce(n, n.intsAttr("axes", null), false)));
        r.register("ReduceSum", 13, ReductionShapes::reduceWithAxesInput);
        for (String op : List.of("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare",
                "ReduceLogSumExp")) {
            r.register(op, (n, opset) -> one(reduce(n, n.intsAttr("axes", null), false)));
            r.register(op, 18, ReductionShapes::reduceWithAxesInput);
        }
        r.register("ArgMax", ReductionShapes::arg);
        r.register("ArgMin", ReductionShapes::arg);
    }

    private static List<TensorType> reduceWithAxesInput(Node n, int opset) {
        if (Shapes.dynamicInput(n, 1)) {
            return one(anyShape(in(n, 0).dataType()));
        }
        return one(reduce(n, Shapes.inputInts(n, 1), n.intAttr("noop_with_empty_axes", 0) != 0));
    }

    /** {@code axes} null or empty: every axis, or none with {@code noopWithEmptyAxes}. */
    private static TensorType reduce(Node n, long[] axes, boolean noopWithEmptyAxes) {
        TensorType x = in(n, 0);
        boolean keep = n.intAttr("keepdims", 1) != 0;
        boolean all = axes == null || axes.length == 0;
        if (all && noopWithEmptyAxes) {
            return x;
        }
        if (all && !keep) {
            return TensorType.of(x.dataType());
        }
        if (!x.hasRank()) {
            return anyShape(x.dataType());
        }
        boolean[] reduced = new boolean[x.rank()];
        if (all) {
            Arrays.fill(reduced, true);
        } else {
            for (long a : axes) {
                reduced[Shapes.axis(a, x.rank())] = true;
            }
        }
        List<Dim> d = new ArrayList<>();
        for (int i = 0; i < x.rank(); i++) {
            if (!reduced[i]) {
                d.add(x.dims().get(i));
            } else if (keep) {
                d.add(Dim.of(1));
            }
        }
        return new TensorType(x.dataType(), d);
    }

    private static List<TensorType> arg(Node n, int opset) {
        TensorType x = in(n, 0);
        if (!x.hasRank()) {
            return one(anyShape(DataType.INT64));
        }
        int a = Shapes.axis(n.intAttr("axis", 0), x.rank());
        List<Dim> d = new ArrayList<>(x.dims());
        if (n.intAttr("keepdims", 1) != 0) {
            d.set(a, Dim.of(1));
        } else {
            d.remove(a);
        }
        return one(new TensorType(DataType.INT64, d));
    }
}
