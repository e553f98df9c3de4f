package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.in;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.List;

/** Shape rules of LayerNormalization (with its Mean and InvStdDev outputs) and SoftmaxCrossEntropyLoss. */
final class NormalizationShapes {
    private NormalizationShapes() {
    }

    static void register(ShapeRegistry r) {
        r.register("LayerNormalization", NormalizationShapes::layerNorm);
        r.register("SoftmaxCrossEntropyLoss", NormalizationShapes::softmaxCrossEntropy);
    }

    private static List<TensorType> layerNorm(Node n, int opset) {
        TensorType x = in(n, 0);
        List<TensorType> outs = new ArrayList<>();
        outs.add(x);
        if (!x.hasRank()) {
            outs.add(TensorType.unknown());
            outs.add(TensorType.unknown());
            return outs;
        }
        int a = Shapes.axis(n.intAttr("axis", -1), x.rank());
        List<Dim> stat = new ArrayList<>(x.dims().subList(0, a));
        for (int i = a; i < x.rank(); i++) {
            stat.add(Dim.of(1));
        }
        // Mean and InvStdDev have type U, which the ONNX schema limits to float and bfloat16 (ORT: float).
        long stash = n.intAttr("stash_type", 1);
        TensorType s = new TensorType(stash == 1 ? DataType.FLOAT : DataType.fromOnnx((int) stash), stat);
        outs.add(s);
        outs.add(s);
        return outs;
    }

    private static List<TensorType> softmaxCrossEntropy(Node n, int opset) {
        TensorType scores = in(n, 0);
        TensorType loss = n.stringAttr("reduction", "mean").equals("none")
                ? new TensorType(scores.dataType(), in(n, 1).dims()) : TensorType.of(scores.dataType());
        return List.of(loss, scores);
    }
}
