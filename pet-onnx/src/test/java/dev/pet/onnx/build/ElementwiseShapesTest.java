package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class ElementwiseShapesTest {
    private final ShapeFixture s = new ShapeFixture();

    @Test
    void unaryOpsKeepTheType() {
        var x = s.floats("b", 3L);
        for (String op : List.of("Relu", "Tanh", "Softmax", "Gelu", "Identity")) {
            assertEquals(f("b", 3L), s.infer(17, op, List.of(x)), op);
        }
    }

    @Test
    void arithmeticBroadcastsAllInputsNumpyStyle() {
        var x = s.floats("b", 1L, 4L);
        var y = s.floats(3L, 1L);
        assertEquals(f("b", 3L, 4L), s.infer(17, "Add", List.of(x, y)));
        assertEquals(f("b", 3L, 4L), s.infer(17, "Sum", List.of(x, y, s.floats(4L))), "variadic Sum");
        assertThrows(OnnxException.class, () -> s.infer(17, "Mul", List.of(s.floats(2L, 5L), y)));
        var exponent = s.input(TensorType.of(DataType.INT64));
        assertEquals(f("b", 1L, 4L), s.infer(17, "Pow", List.of(x, exponent)), "Pow keeps the base's type");
    }

    @Test
    void comparisonsAndPredicatesGiveBooleans() {
        var x = s.floats("b", 4L);
        assertEquals(TensorType.symbolic(DataType.BOOL, "b", 4L), s.infer(17, "Less", List.of(x, s.floats(4L))));
        assertEquals(TensorType.symbolic(DataType.BOOL, "b", 4L), s.infer(17, "IsNaN", List.of(x)));
    }

    @Test
    void whereBroadcastsThreeWaysAndTakesTheValuesType() {
        var cond = s.input(TensorType.of(DataType.BOOL, 1, 4));
        assertEquals(f(2L, 4L), s.infer(17, "Where", List.of(cond, s.floats(2L, 1L), s.floats(4L))));
    }

    @Test
    void castsChangeOnlyTheElementType() {
        var x = s.floats("b", 4L);
        assertEquals(TensorType.symbolic(DataType.INT64, "b", 4L), s.infer(17, "Cast", List.of(x),
                Attribute.of("to", (long) DataType.INT64.onnxCode())));
        assertEquals(TensorType.symbolic(DataType.INT64, "b", 4L), s.infer(17, "CastLike", List.of(x,
                s.input(TensorType.of(DataType.INT64)))));
    }

    @Test
    void dropoutGivesOutputAndBooleanMask() {
        var x = s.floats("b", 4L);
        assertEquals(List.of(f("b", 4L), TensorType.symbolic(DataType.BOOL, "b", 4L)),
                s.inferAll(17, "Dropout", List.of(x), 2));
    }
}
