package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.anyShape;
import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;

/**
 * Shape rules of ops that make tensors from shapes or attributes: Shape (with opset 15's start/end), Size,
 * ConstantOfShape, Constant, Range.
 */
final class GeneratorShapes {
    private GeneratorShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("Shape", (n, opset) -> one(shape(in(n, 0), 0, null)));
        r.register("Shape", 15, (n, opset) -> one(shape(in(n, 0), n.intAttr("start", 0),
                n.attribute("end") == null ? null : n.intAttr("end", 0))));
        r.register("Size", (n, opset) -> one(TensorType.of(DataType.INT64)));
        r.register("ConstantOfShape", GeneratorShapes::constantOfShape);
        r.register("Constant", GeneratorShapes::constant);
        r.register("Range", (n, opset) -> one(new TensorType(in(n, 0).dataType(), List.of(rangeLength(n)))));
    }

    /** {@code end} null: to the last dimension. */
    private static TensorType shape(TensorType x, long start, Long end) {
        if (!x.hasRank()) {
            return new TensorType(DataType.INT64, List.of(Dim.unknown()));
        }
        int r = x.rank();
        long e = end == null ? r : end;
        long s = Math.max(0, Math.min(r, start < 0 ? start + r : start));
        e = Math.max(0, Math.min(r, e < 0 ? e + r : e));
        return TensorType.of(DataType.INT64, Math.max(0, e - s));
    }

    private static List<TensorType> constantOfShape(Node n, int opset) {
        Attribute v = n.attribute("value");
        DataType dt = v == null ? DataType.FLOAT : v.asTensor().dataType();
        long[] shape = ShapeInference.constantInts(n.input(0));
        if (shape != null) {
            return one(TensorType.of(dt, shape));
        }
        TensorType s = in(n, 0);
        if (s.isStatic() && s.rank() == 1) {
            return one(new TensorType(dt, Shapes.unknownDims(s.shape()[0])));
        }
        return one(anyShape(dt));
    }

    private static List<TensorType> constant(Node n, int opset) {
        Attribute v = n.attribute("value");
        if (v != null && v.kind() == Attribute.Kind.TENSOR) {
            Tensor t = v.asTensor();
            return one(TensorType.of(t.dataType(), t.shape()));
        }
        if (n.attribute("value_int") != null) {
            return one(TensorType.of(DataType.INT64));
        }
        if (n.attribute("value_ints") != null) {
            return one(TensorType.of(DataType.INT64, n.attribute("value_ints").asInts().length));
        }
        if (n.attribute("value_float") != null) {
            return one(TensorType.of(DataType.FLOAT));
        }
        if (n.attribute("value_floats") != null) {
            return one(TensorType.of(DataType.FLOAT, n.attribute("value_floats").asFloats().length));
        }
        return List.of();
    }

    /**
     * The length of {@code Range(0, limit, 1)} when the limit is a dimension of another value, read as
     * {@code Gather(Shape(v), i)} or {@code Squeeze(Shape(v, i, i+1))}: that dimension (e.g. the symbolic
     * sequence length), so positions and masks built from it keep the model's named dimensions.
     */
    static Dim rangeLength(Node n) {
        long[] start = ShapeInference.constantInts(n.input(0));
        long[] delta = ShapeInference.constantInts(n.input(2));
        long[] limit = ShapeInference.constantInts(n.input(1));
        if (start == null || delta == null || start.length != 1 || delta.length != 1 || delta[0] != 1) {
            return Dim.unknown();
        }
        if (limit != null && limit.length == 1) {
            return Dim.of(Math.max(0, limit[0] - start[0]));
        }
        if (start[0] != 0 || n.input(1) == null || n.input(1).producer() == null) {
            return Dim.unknown();
        }
        Node p = n.input(1).producer();
        Value shapeOf = null;
        long index = -1;
        if (p.opType().equals("Gather") && p.input(0) != null && p.input(0).producer() != null
                && p.input(0).producer().opType().equals("Shape") && p.intAttr("axis", 0) == 0) {
            long[] i = ShapeInference.constantInts(p.input(1));
            if (i != null && i.length == 1 && p.input(1).type().hasRank() && p.input(1).type().rank() == 0) {
                shapeOf = p.input(0);
                index = i[0];
            }
        } else if (p.opType().equals("Squeeze") && p.input(0) != null && p.input(0).producer() != null
                && p.input(0).producer().opType().equals("Shape")) {
            Node shape = p.input(0).producer();
            Attribute st = shape.attribute("start");
            Attribute en = shape.attribute("end");
            if (st != null && en != null && en.asInt() == st.asInt() + 1) {
                shapeOf = p.input(0);
                index = st.asInt();
            }
        }
        if (shapeOf == null) {
            return Dim.unknown();
        }
        Node shapeNode = shapeOf.producer();
        long offset = shapeNode.intAttr("start", 0);
        TensorType src = in(shapeNode, 0);
        if (!src.hasRank() || offset != 0 && p.opType().equals("Gather")) {
            return Dim.unknown();
        }
        int r = src.rank();
        long i = index < 0 ? index + r : index;
        return i >= 0 && i < r ? src.dims().get((int) i) : Dim.unknown();
    }
}
