package dev.pet.onnx.build;

import static dev.pet.onnx.build.Shapes.in;
import static dev.pet.onnx.build.Shapes.one;

import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;

/** Shape rules of elementwise ops: unary maps, broadcasting arithmetic, comparisons, Where, casts and Dropout. */
final class ElementwiseShapes {
    private ElementwiseShapes() {
    }

    static void register(ShapeRegistry r) {
        for (String op : List.of("Identity", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Erf", "Sigmoid",
                "Relu", "Abs", "Sign", "Softmax", "LogSoftmax", "Gelu", "Floor", "Ceil", "Round", "Clip", "Trilu",
                "Sin", "Cos", "LeakyRelu", "Elu", "Softplus", "HardSigmoid")) {
            r.register(op, (n, opset) -> one(in(n, 0)));
        }
        for (String op : List.of("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mod")) {
            r.register(op, (n, opset) -> one(broadcastAll(n)));
        }
        // Pow's result has the base's type even when the exponent's differs.
        r.register("Pow", (n, opset) -> one(broadcastAll(n).withDataType(in(n, 0).dataType())));
        for (String op : List.of("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor")) {
            r.register(op, (n, opset) -> one(new TensorType(DataType.BOOL,
                    ShapeInference.broadcast(in(n, 0), in(n, 1)).dims())));
        }
        for (String op : List.of("Not", "IsNaN", "IsInf")) {
            r.register(op, (n, opset) -> one(in(n, 0).withDataType(DataType.BOOL)));
        }
        r.register("Where", ElementwiseShapes::where);
        r.register("Cast", (n, opset) -> one(in(n, 0).withDataType(DataType.fromOnnx((int) n.intAttr("to", 1)))));
        r.register("CastLike", (n, opset) -> one(in(n, 0).withDataType(in(n, 1).dataType())));
        r.register("Dropout", (n, opset) -> List.of(in(n, 0), in(n, 0).withDataType(DataType.BOOL)));
    }

    private static TensorType broadcastAll(Node n) {
        TensorType t = in(n, 0);
        for (int i = 1; i < n.inputCount(); i++) {
            t = ShapeInference.broadcast(t, in(n, i));
        }
        return t;
    }

    private static List<TensorType> where(Node n, int opset) {
        TensorType t = ShapeInference.broadcast(ShapeInference.broadcast(in(n, 0), in(n, 1)), in(n, 2));
        return one(new TensorType(in(n, 1).dataType() != null ? in(n, 1).dataType() : in(n, 2).dataType(),
                t.dims()));
    }
}
