package dev.pet.onnx.build;

import static dev.pet.onnx.build.ShapeFixture.f;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class NormalizationShapesTest {
    private final ShapeFixture s = new ShapeFixture();

    @Test
    void layerNormStatisticsKeepLeadingAxesAndAreFloat() {
        var x = s.input(TensorType.symbolic(DataType.FLOAT16, "b", "s", 8L));
        var scale = s.input(TensorType.of(DataType.FLOAT16, 8));
        List<TensorType> out = s.inferAll(17, "LayerNormalization", List.of(x, scale), 3);
        assertEquals(x.type(), out.get(0));
        assertEquals(f("b", "s", 1L), out.get(1), "Mean, stash_type float by default");
        assertEquals(out.get(1), out.get(2));
        assertEquals(f("b", 1L, 1L), s.inferAll(17, "LayerNormalization", List.of(x, scale), 3,
                Attribute.of("axis", 1L)).get(1));
    }

    @Test
    void crossEntropyLossIsScalarUnlessNotReduced() {
        var scores = s.floats("n", 10L);
        var labels = s.input(TensorType.symbolic(DataType.INT64, "n"));
        List<TensorType> mean = s.inferAll(17, "SoftmaxCrossEntropyLoss", List.of(scores, labels), 2);
        assertEquals(List.of(f(), f("n", 10L)), mean, "loss and log-probabilities");
        assertEquals(f("n"), s.infer(17, "SoftmaxCrossEntropyLoss", List.of(scores, labels),
                Attribute.of("reduction", "none")));
    }
}
