package dev.pet.onnx.build;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class ShapeInferenceTest {
    private final Graph g = new Graph("g");
    private final GraphBuilder b = new GraphBuilder(g);

    @Test
    void broadcastsElementwiseOps() {
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", 1L, 4L));
        Value y = b.input("y", TensorType.of(DataType.FLOAT, 3, 1));
        assertEquals(TensorType.symbolic(DataType.FLOAT, "batch", 3L, 4L), b.add(x, y).type());
        assertEquals(DataType.BOOL, b.less(x, y).type().dataType());
        Value z = b.input("z", TensorType.of(DataType.FLOAT, 2, 5));
        assertThrows(OnnxException.class, () -> b.mul(z, y));
    }

    @Test
    void infersMatMulGemmAndLayerNorm() {
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "b", "s", 8L));
        Value w = b.input("w", TensorType.of(DataType.FLOAT, 8, 24));
        assertEquals(TensorType.symbolic(DataType.FLOAT, "b", "s", 24L), b.matMul(x, w).type());
        Value a = b.input("a", TensorType.of(DataType.FLOAT, 3, 5));
        Value c = b.input("c", TensorType.of(DataType.FLOAT, 7, 5));
        assertEquals(TensorType.of(DataType.FLOAT, 3, 7), b.gemm(a, c, null, 1, 1, false, true).type());
        var ln = b.layerNormNode(x, b.input("g", TensorType.of(DataType.FLOAT, 8)), null, 1e-5f);
        assertEquals(x.type(), ln.output(0).type());
    }

    @Test
    void followsConstantShapesThroughReshapeSliceSplitAndConcat() {
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 2, 6, 8));
        assertEquals(TensorType.of(DataType.FLOAT, 2, 6, 2, 4), b.reshape(x, 0, 0, 2, -1).type());
        assertEquals(TensorType.of(DataType.FLOAT, 2, 3, 8),
                b.slice(x, new long[] {-1}, new long[] {Long.MIN_VALUE}, new long[] {1}, new long[] {-2}).type());
        List<Value> parts = b.split(x, 2, 2, 6);
        assertEquals(TensorType.of(DataType.FLOAT, 2, 6, 6), parts.get(1).type());
        assertEquals(TensorType.of(DataType.FLOAT, 2, 6, 16), b.concat(List.of(x, x), -1).type());
        assertEquals(TensorType.of(DataType.FLOAT, 8, 2, 6), b.transpose(x, 2, 0, 1).type());
        assertEquals(TensorType.of(DataType.FLOAT, 2, 1, 6, 8), b.unsqueeze(x, 1).type());
        assertEquals(TensorType.of(DataType.FLOAT, 2, 8), b.reduceMean(x, new long[] {1}, false).type());
        assertEquals(TensorType.of(DataType.INT64, 3), b.shape(x).type());
    }
}
