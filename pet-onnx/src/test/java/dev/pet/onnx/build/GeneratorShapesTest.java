package dev.pet.onnx.build;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class GeneratorShapesTest {
    private final ShapeFixture s = new ShapeFixture();

    @Test
    void shapeHasStartAndEndFromOpset15() {
        var x = s.floats("b", "s", 8L);
        assertEquals(TensorType.of(DataType.INT64, 3), s.infer(14, "Shape", List.of(x),
                Attribute.of("start", 1L)), "before 15 start means nothing");
        assertEquals(TensorType.of(DataType.INT64, 2), s.infer(15, "Shape", List.of(x), Attribute.of("start", 1L)));
        assertEquals(TensorType.of(DataType.INT64, 1), s.infer(15, "Shape", List.of(x), Attribute.of("start", -2L),
                Attribute.of("end", -1L)));
        assertEquals(TensorType.of(DataType.INT64), s.infer(17, "Size", List.of(x)));
    }

    @Test
    void constantsAndConstantOfShape() {
        assertEquals(TensorType.of(DataType.INT64, 3), s.infer(17, "Constant", List.of(),
                Attribute.of("value_ints", 1L, 2L, 3L)));
        assertEquals(TensorType.of(DataType.FLOAT, 2, 2), s.infer(17, "Constant", List.of(),
                Attribute.of("value", Tensor.ofFloats(new float[4], 2, 2))));
        Tensor zeroHalf = Tensor.fromDoubles(DataType.FLOAT16, new double[] {0}, 1);
        assertEquals(TensorType.of(DataType.FLOAT16, 2, 5), s.infer(17, "ConstantOfShape", List.of(s.ints(2, 5)),
                Attribute.of("value", zeroHalf)));
        assertEquals(new TensorType(DataType.FLOAT, List.of(Dim.unknown(), Dim.unknown())),
                s.infer(17, "ConstantOfShape", List.of(s.dynamicInts(2))), "rank from the shape's length");
    }

    @Test
    void rangeKeepsTheSymbolicLengthItCountsTo() {
        var x = s.floats("b", "seq", 8L);
        var shape = s.node("Shape", List.of(x), 1);
        shape.output(0).setType(TensorType.of(DataType.INT64, 3));
        var index = s.input(TensorType.of(DataType.INT64));
        // A rank-0 constant index is what names the dimension.
        var scalarIndex = s.node("Constant", List.of(), 1, Attribute.of("value", Tensor.scalar(1L)));
        scalarIndex.output(0).setType(TensorType.of(DataType.INT64));
        var seq = s.node("Gather", List.of(shape.output(0), scalarIndex.output(0)), 1);
        var start = s.node("Constant", List.of(), 1, Attribute.of("value", Tensor.scalar(0L)));
        var delta = s.node("Constant", List.of(), 1, Attribute.of("value", Tensor.scalar(1L)));
        TensorType positions = s.infer(17, "Range", List.of(start.output(0), seq.output(0), delta.output(0)));
        assertEquals(List.of(Dim.symbol("seq")), positions.dims());
        assertEquals(List.of(Dim.unknown()), s.infer(17, "Range", List.of(start.output(0), index,
                delta.output(0))).dims(), "a limit of unknown origin");
        assertEquals(List.of(Dim.of(5)), s.infer(17, "Range", List.of(s.ints(2), s.ints(7), s.ints(1))).dims());
    }
}
