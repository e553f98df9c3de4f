package dev.pet.onnx.autodiff;

import dev.pet.onnx.ir.Value;
import java.util.List;

/**
 * The reverse-mode rule of one operator: given the gradients of a node's outputs (in {@link GradContext}), build the
 * gradients of its inputs from standard ONNX ops. Entries are null for inputs that need no gradient.
 */
@FunctionalInterface
public interface GradientRule {
    List<Value> apply(GradContext ctx);
}
