package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.List;
import java.util.Set;

/** Adds the optional forward outputs that backward rules reuse (statistics, masks, log-probabilities). */
final class ForwardOutputs {
    private ForwardOutputs() {
    }

    /** Rewrites nodes on the gradient path that lack outputs their rule needs; true when any changed. */
    static boolean ensure(Graph graph, List<Node> active, Set<Value> onPath, int opset) {
        boolean changed = false;
        for (Node n : active) {
            if (!n.domain().isEmpty()) {
                continue;
            }
            int needed = switch (n.opType()) {
                case "LayerNormalization" -> 3;
                case "SoftmaxCrossEntropyLoss" -> 2;
                case "Dropout" -> ElementwiseGradients.dropoutMayTrain(n) ? 2 : 0;
                default -> 0;
            };
            boolean missing = false;
            for (int i = 0; i < needed; i++) {
                missing |= n.output(i) == null;
            }
            if (missing) {
                withOutputs(graph, n, needed, opset);
                changed = true;
            }
        }
        return changed;
    }

    private static void withOutputs(Graph graph, Node n, int count, int opset) {
        String base = n.name().isEmpty() ? n.opType() : n.name();
        for (int i = 0; i < count; i++) {
            if (n.output(i) == null) {
                graph.addOptionalOutput(n, i, graph.uniqueName(base + "_output_" + i));
            }
        }
        ShapeInference.infer(n, opset);
    }
}
