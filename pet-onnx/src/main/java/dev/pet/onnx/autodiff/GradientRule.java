package dev.pet.onnx.autodiff;

import dev.pet.onnx.ir.Node;

/**
 * The backward rule of one operator: given the gradients of a node's outputs (from {@link GradientContext#grad}),
 * it adds gradient contributions for those inputs that lie on the gradient path
 * ({@link GradientContext#propagate}). Rules build standard ONNX ops only.
 */
@FunctionalInterface
public interface GradientRule {
    void backward(Node node, GradientContext ctx);
}
