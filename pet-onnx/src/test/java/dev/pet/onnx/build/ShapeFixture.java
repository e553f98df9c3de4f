package dev.pet.onnx.build;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Builds single nodes in exactly the form a given opset defines and runs shape inference on them. */
final class ShapeFixture {
    private final Graph g = new Graph("g");
    private int counter;

    Value input(TensorType t) {
        return g.addInput("in" + counter++, t);
    }

    Value floats(Object... dims) {
        return input(TensorType.symbolic(DataType.FLOAT, dims));
    }

    /** A constant int64 vector (an initializer). */
    Value ints(long... v) {
        return g.setInitializer("c" + counter++, Tensor.ofLongs(v, v.length));
    }

    /** A non-constant int64 vector of the given length. */
    Value dynamicInts(long length) {
        return input(TensorType.of(DataType.INT64, length));
    }

    Node node(String op, List<Value> inputs, int outputs, Attribute... attrs) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < outputs; i++) {
            names.add("out" + counter++);
        }
        return g.addNode(op, "", op + counter++, inputs, names, Arrays.asList(attrs));
    }

    /** Inferred type of output 0 of {@code op} at {@code opset}. */
    TensorType infer(int opset, String op, List<Value> inputs, Attribute... attrs) {
        return inferAll(opset, op, inputs, 1, attrs).get(0);
    }

    List<TensorType> inferAll(int opset, String op, List<Value> inputs, int outputs, Attribute... attrs) {
        return ShapeInference.inferTypes(node(op, inputs, outputs, attrs), opset);
    }

    static TensorType f(Object... dims) {
        return TensorType.symbolic(DataType.FLOAT, dims);
    }
}
