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

    @Test
    void keepsSymbolicSizesThroughReshapesThatMergeAndSplitThem() {
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", "sequence", 64L));
        TensorType rows = TensorType.symbolic(DataType.FLOAT, "batch*sequence", 64L);
        Value flat = b.reshape(x, -1, 64);
        assertEquals(rows, flat.type());
        // the same product however it is reached, so values of both origins are known to match
        assertEquals(rows, b.flatten(x, 2).type());
        assertEquals(rows, b.add(flat, b.flatten(x, 2)).type());
        // [batch, 4, sequence, 16] regrouped with 0 (copy) and -1 (the rest): the -1 is exactly "sequence"
        Value h = b.input("h", TensorType.symbolic(DataType.FLOAT, "batch", 4L, "sequence", 16L));
        assertEquals(TensorType.symbolic(DataType.FLOAT, "batch", 2L, 2L, "sequence", 16L),
                b.reshape(h, 0, 2, 2, -1, 16).type());
        assertEquals(TensorType.symbolic(DataType.FLOAT, "4*batch*sequence", 16L), b.reshape(h, -1, 16).type());
        assertEquals(TensorType.symbolic(DataType.FLOAT, "batch", 64L, "sequence"),
                b.reshape(b.transpose(h, 0, 1, 3, 2), 0, 64, -1).type());
        // not provable: 64·batch·sequence need not divide by 128; an unknown size stays unknown
        assertEquals(TensorType.of(DataType.FLOAT, -1, 128), b.reshape(x, -1, 128).type());
        Value u = b.input("u", TensorType.of(DataType.FLOAT, -1, 64));
        assertEquals(TensorType.of(DataType.FLOAT, -1), b.reshape(u, -1).type());
    }
}
