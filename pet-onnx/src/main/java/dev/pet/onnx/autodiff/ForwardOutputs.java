package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.ArrayList;
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

    private static void withOutputs(Graph graph, Node old, int count, int opset) {
        List<String> temp = new ArrayList<>();
        for (int i = 0; i < Math.max(count, old.outputs().size()); i++) {
            temp.add(graph.uniqueName((old.name().isEmpty() ? old.opType() : old.name()) + "_out" + i));
        }
        Node fresh = graph.addNode(old.opType(), old.domain(), old.name(), old.inputs(), temp,
                old.attributes().values());
        List<String> keep = new ArrayList<>();
        for (int i = 0; i < old.outputs().size(); i++) {
            Value o = old.output(i);
            keep.add(o == null ? null : o.name());
            if (o != null) {
                fresh.output(i).setType(o.type());
                graph.replaceAllUses(o, fresh.output(i));
            }
        }
        graph.removeNode(old);
        for (int i = 0; i < keep.size(); i++) {
            if (keep.get(i) != null) {
                fresh.output(i).rename(keep.get(i));
            }
        }
        ShapeInference.infer(fresh, opset);
    }
}
