package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.anyShape;
import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.List;

/** Shape rules of indexing ops: Gather, GatherElements, ScatterND, ScatterElements, NonZero. */
final class IndexShapes {
    private IndexShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("Gather", IndexShapes::gather);
        r.register("GatherElements", (n, opset) -> one(new TensorType(in(n, 0).dataType(), in(n, 1).dims())));
        r.register("ScatterND", (n, opset) -> one(in(n, 0)));
        r.register("ScatterElements", (n, opset) -> one(in(n, 0)));
        r.register("NonZero", (n, opset) -> one(new TensorType(DataType.INT64, List.of(in(n, 0).hasRank()
                ? Dim.of(in(n, 0).rank()) : Dim.unknown(), Dim.unknown()))));
    }

    /** data [d0.., d_axis, ..] indexed by [i..] gives [d0.., i.., ..]. */
    private static List<TensorType> gather(Node n, int opset) {
        TensorType x = in(n, 0);
        TensorType idx = in(n, 1);
        if (!x.hasRank() || !idx.hasRank()) {
            return one(anyShape(x.dataType()));
        }
        int a = Shapes.axis(n.intAttr("axis", 0), x.rank());
        List<Dim> d = new ArrayList<>(x.dims().subList(0, a));
        d.addAll(idx.dims());
        d.addAll(x.dims().subList(a + 1, x.rank()));
        return one(new TensorType(x.dataType(), d));
    }
}
