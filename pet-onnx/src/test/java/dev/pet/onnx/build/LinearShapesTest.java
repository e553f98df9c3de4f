package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import java.util.List;
import org.junit.jupiter.api.Test;

class LinearShapesTest {
    private final ShapeFixture s = new ShapeFixture();

    @Test
    void matMulBroadcastsBatchDimensions() {
        assertEquals(f("b", "s", 24L), s.infer(17, "MatMul", List.of(s.floats("b", "s", 8L), s.floats(8L, 24L))));
        assertEquals(f(5L, 2L, 3L, 7L), s.infer(17, "MatMul", List.of(s.floats(1L, 2L, 3L, 4L),
                s.floats(5L, 1L, 4L, 7L))));
    }

    @Test
    void matMulDropsTheAxesOfVectorOperands() {
        assertEquals(f(3L), s.infer(17, "MatMul", List.of(s.floats(3L, 4L), s.floats(4L))));
        assertEquals(f(7L), s.infer(17, "MatMul", List.of(s.floats(4L), s.floats(4L, 7L))));
    }

    @Test
    void gemmFollowsItsTransposeFlags() {
        var a = s.floats(3L, 5L);
        var c = s.floats(7L, 5L);
        assertEquals(f(3L, 7L), s.infer(17, "Gemm", List.of(a, c), Attribute.of("transB", 1L)));
        assertEquals(f(5L, 5L), s.infer(17, "Gemm", List.of(a, s.floats(3L, 5L)), Attribute.of("transA", 1L)));
    }
}
