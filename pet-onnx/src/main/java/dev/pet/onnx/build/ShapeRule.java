package dev.pet.onnx.build;

import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import java.util.List;

/**
 * The type rule of one operator in one opset range: the element types and shapes of a node's outputs from its
 * inputs' types and attributes. Dimensions that depend on non-constant data come back unknown, never guessed; an
 * empty list leaves every output as declared.
 */
@FunctionalInterface
public interface ShapeRule {
    List<TensorType> infer(Node node, int opset);
}
