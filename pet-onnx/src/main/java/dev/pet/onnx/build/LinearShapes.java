package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.anyShape;
import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.List;

/** Shape rules of MatMul (numpy semantics, batch dimensions broadcast), Gemm and DequantizeLinear. */
final class LinearShapes {
    private LinearShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("MatMul", (n, opset) -> one(matMul(in(n, 0), in(n, 1))));
        r.register("Gemm", LinearShapes::gemm);
        // The input's shape in the scale's element type (frozen quantized weights, kernel dequantize).
        r.register("DequantizeLinear", (n, opset) -> one(new TensorType(in(n, 1).dataType(), in(n, 0).dims())));
    }

    private static List<TensorType> gemm(Node n, int opset) {
        TensorType a = in(n, 0);
        TensorType b = in(n, 1);
        if (!a.hasRank() || !b.hasRank()) {
            return one(anyShape(a.dataType()));
        }
        Dim m = n.intAttr("transA", 0) != 0 ? a.dims().get(1) : a.dims().get(0);
        Dim k = n.intAttr("transB", 0) != 0 ? b.dims().get(0) : b.dims().get(1);
        return one(new TensorType(a.dataType(), List.of(m, k)));
    }

    static TensorType matMul(TensorType a, TensorType b) {
        DataType dt = a.dataType();
        if (!a.hasRank() || !b.hasRank()) {
            return anyShape(dt);
        }
        List<Dim> ad = new ArrayList<>(a.dims());
        List<Dim> bd = new ArrayList<>(b.dims());
        boolean aVec = ad.size() == 1;
        boolean bVec = bd.size() == 1;
        if (aVec) {
            ad.add(0, Dim.of(1));
        }
        if (bVec) {
            bd.add(Dim.of(1));
        }
        TensorType batch = ShapeInference.broadcast(new TensorType(dt, ad.subList(0, ad.size() - 2)),
                new TensorType(dt, bd.subList(0, bd.size() - 2)));
        List<Dim> d = new ArrayList<>(batch.dims());
        if (!aVec) {
            d.add(ad.get(ad.size() - 2));
        }
        if (!bVec) {
            d.add(bd.get(bd.size() - 1));
        }
        return new TensorType(dt, d);
    }
}
