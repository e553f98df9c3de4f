package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class MovementShapesTest {
    private final ShapeFixture s = new ShapeFixture();
    private final dev.pet.onnx.ir.Value x = s.floats(2L, 6L, 8L);

    private static TensorType unknownDims(int rank) {
        return new TensorType(DataType.FLOAT, java.util.Collections.nCopies(rank, Dim.unknown()));
    }

    @Test
    void reshapeCopiesZerosAndSolvesMinusOne() {
        assertEquals(f(2L, 6L, 2L, 4L), s.infer(17, "Reshape", List.of(x, s.ints(0, 0, 2, -1))));
        assertEquals(unknownDims(3), s.infer(17, "Reshape", List.of(x, s.dynamicInts(3))), "rank from the shape");
        assertEquals(f("b", 48L), s.infer(17, "Reshape", List.of(s.floats("b", 6L, 8L), s.ints(0, 48))));
    }

    @Test
    void flattenAndTranspose() {
        assertEquals(f(12L, 8L), s.infer(17, "Flatten", List.of(x), Attribute.of("axis", 2L)));
        assertEquals(f(8L, 2L, 6L), s.infer(17, "Transpose", List.of(x), Attribute.of("perm", 2L, 0L, 1L)));
        assertEquals(f(8L, 6L, 2L), s.infer(17, "Transpose", List.of(x)), "no perm: reversed");
    }

    @Test
    void unsqueezeTakesAxesAsAttributeBefore13AndAsInputFrom13() {
        assertEquals(f(2L, 1L, 6L, 8L, 1L), s.infer(11, "Unsqueeze", List.of(x), Attribute.of("axes", 1L, -1L)));
        assertEquals(f(2L, 1L, 6L, 8L, 1L), s.infer(13, "Unsqueeze", List.of(x, s.ints(1, -1))));
        assertEquals(new TensorType(DataType.FLOAT, null), s.infer(13, "Unsqueeze", List.of(x), Attribute.of(
                "axes", 1L)), "an opset-11 attribute means nothing at 13");
    }

    @Test
    void squeezeTakesAxesAsAttributeBefore13AndAsInputFrom13() {
        var y = s.floats(1L, 6L, 1L);
        assertEquals(f(6L, 1L), s.infer(11, "Squeeze", List.of(y), Attribute.of("axes", new long[] {0L})));
        assertEquals(f(1L, 6L), s.infer(13, "Squeeze", List.of(y, s.ints(-1))));
        assertEquals(f(6L), s.infer(13, "Squeeze", List.of(y)), "no axes: every unit axis");
        assertEquals(new TensorType(DataType.FLOAT, null), s.infer(13, "Squeeze", List.of(y, s.dynamicInts(1))));
    }

    @Test
    void splitTakesSizesAsAttributeBefore13AndAsInputFrom13() {
        assertEquals(List.of(f(2L, 2L, 8L), f(2L, 4L, 8L)), s.inferAll(11, "Split", List.of(x), 2,
                Attribute.of("axis", 1L), Attribute.of("split", 2L, 4L)));
        assertEquals(List.of(f(2L, 6L, 3L), f(2L, 6L, 5L)), s.inferAll(13, "Split", List.of(x, s.ints(3, 5)), 2,
                Attribute.of("axis", -1L)));
        assertEquals(List.of(f(2L, 3L, 8L), f(2L, 3L, 8L)), s.inferAll(13, "Split", List.of(x), 2,
                Attribute.of("axis", 1L)), "no sizes: equal parts");
    }

    @Test
    void sliceTakesAttributesBefore10AndInputsFrom10() {
        assertEquals(f(2L, 3L, 8L), s.infer(9, "Slice", List.of(x), Attribute.of("starts", new long[] {1L}),
                Attribute.of("ends", new long[] {4L}), Attribute.of("axes", new long[] {1L})));
        assertEquals(f(2L, 3L, 8L), s.infer(10, "Slice", List.of(x, s.ints(-1), s.ints(Long.MIN_VALUE),
                s.ints(1), s.ints(-2))), "negative steps count backwards");
        assertEquals(f(2L, 6L, 4L), s.infer(17, "Slice", List.of(x, s.ints(0, 0, 4), s.ints(2, 6, 8))));
        assertEquals(new TensorType(DataType.FLOAT, List.of(Dim.of(2), Dim.unknown(), Dim.of(8))),
                s.infer(17, "Slice", List.of(x, s.dynamicInts(1), s.dynamicInts(1), s.ints(1))),
                "unknown bounds on a known axis");
    }

    @Test
    void sliceLengthFollowsOnnxClamping() {
        assertEquals(3, ShapeInference.sliceLength(10, 2, 5, 1));
        assertEquals(10, ShapeInference.sliceLength(10, 0, Long.MAX_VALUE, 1));
        assertEquals(5, ShapeInference.sliceLength(10, -1, Long.MIN_VALUE, -2));
        assertEquals(0, ShapeInference.sliceLength(10, 5, 2, 1));
        assertEquals(4, ShapeInference.sliceLength(10, 8, 0, -2));
    }

    @Test
    void concatAddsTheAxisWhenEveryPartKnowsIt() {
        assertEquals(f(2L, 6L, 16L), s.infer(17, "Concat", List.of(x, x), Attribute.of("axis", -1L)));
        assertEquals(new TensorType(DataType.FLOAT, List.of(Dim.of(2), Dim.unknown(), Dim.of(8))),
                s.infer(17, "Concat", List.of(x, s.floats(2L, "t", 8L)), Attribute.of("axis", 1L)));
    }

    @Test
    void expandBroadcastsToAConstantShape() {
        assertEquals(f(3L, 2L, 6L, 8L), s.infer(17, "Expand", List.of(x, s.ints(3, 1, 1, 1))));
    }

    @Test
    void padTakesPadsAsAttributeBefore11AndAsInputFrom11() {
        assertEquals(f(2L, 7L, 10L), s.infer(2, "Pad", List.of(x), Attribute.of("pads", 0L, 1L, 0L, 0L, 0L, 2L)));
        assertEquals(f(2L, 7L, 10L), s.infer(11, "Pad", List.of(x, s.ints(0, 1, 0, 0, 0, 2))));
        assertEquals(unknownDims(3), s.infer(18, "Pad", List.of(x, s.ints(1, 1), s.ints(0), s.ints(1))),
                "pads for some axes only: rank kept");
    }
}
