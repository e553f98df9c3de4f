package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class IndexShapesTest {
    private final ShapeFixture s = new ShapeFixture();

    @Test
    void gatherReplacesTheAxisByTheIndexShape() {
        var table = s.floats(50L, 16L);
        var ids = s.input(TensorType.symbolic(DataType.INT64, "b", "s"));
        assertEquals(f("b", "s", 16L), s.infer(17, "Gather", List.of(table, ids)));
        var scalar = s.input(TensorType.of(DataType.INT64));
        assertEquals(f(50L), s.infer(17, "Gather", List.of(table, scalar), Attribute.of("axis", -1L)),
                "a scalar index drops the axis");
    }

    @Test
    void elementsAndScatterShapes() {
        var data = s.floats(4L, 5L);
        var idx = s.input(TensorType.of(DataType.INT64, 4, 1));
        assertEquals(f(4L, 1L), s.infer(17, "GatherElements", List.of(data, idx)));
        assertEquals(f(4L, 5L), s.infer(17, "ScatterND", List.of(data, idx, s.floats(4L, 5L))));
        assertEquals(new TensorType(DataType.INT64, List.of(Dim.of(2), Dim.unknown())),
                s.infer(17, "NonZero", List.of(data)), "[rank, count]");
    }
}
