package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReductionShapesTest {
    private final ShapeFixture s = new ShapeFixture();
    private final dev.pet.onnx.ir.Value x = s.floats("b", 6L, 8L);

    @Test
    void axesAreAnAttributeBeforeOpset13ForReduceSum() {
        assertEquals(f("b", 1L, 8L), s.infer(11, "ReduceSum", List.of(x), Attribute.of("axes", new long[] {1L})));
        assertEquals(f("b", 8L), s.infer(11, "ReduceSum", List.of(x), Attribute.of("axes", new long[] {-2L}),
                Attribute.of("keepdims", 0L)));
    }

    @Test
    void axesAreAnInputFromOpset13ForReduceSum() {
        assertEquals(f("b", 8L), s.infer(13, "ReduceSum", List.of(x, s.ints(1)), Attribute.of("keepdims", 0L)));
        assertEquals(f(), s.infer(13, "ReduceSum", List.of(x), Attribute.of("keepdims", 0L)), "no axes: all");
        assertEquals(x.type(), s.infer(13, "ReduceSum", List.of(x), Attribute.of("noop_with_empty_axes", 1L)));
        assertEquals(new TensorType(DataType.FLOAT, null), s.infer(13, "ReduceSum", List.of(x, s.dynamicInts(1))),
                "axes not constant: rank unknown");
    }

    @Test
    void otherReductionsMovedAxesToAnInputInOpset18() {
        assertEquals(f("b", 6L, 1L), s.infer(17, "ReduceMean", List.of(x), Attribute.of("axes", new long[] {-1L})));
        assertEquals(f("b", 6L, 1L), s.infer(18, "ReduceMean", List.of(x, s.ints(-1))));
        assertEquals(f(1L, 1L, 1L), s.infer(18, "ReduceMax", List.of(x)), "all axes, kept");
    }

    @Test
    void argMaxGivesInt64Indices() {
        assertEquals(TensorType.symbolic(DataType.INT64, "b", 6L), s.infer(17, "ArgMax", List.of(x),
                Attribute.of("axis", 2L), Attribute.of("keepdims", 0L)));
        assertEquals(TensorType.symbolic(DataType.INT64, "b", 1L, 8L), s.infer(17, "ArgMin", List.of(x),
                Attribute.of("axis", 1L)));
    }
}
