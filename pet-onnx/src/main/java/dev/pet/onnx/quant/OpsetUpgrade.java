package dev.pet.onnx.quant;

import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.Set;

/**
 * Raises a model's default-domain opset in place, rewriting the nodes whose form changed on the way. Block-wise
 * {@code DequantizeLinear} and 4-bit tensors need opset 21 (and IR version 10), while graphs are built at 17.
 * Between 17 and 21 only two signatures PET Runtime emits changed, both at 18: reductions other than ReduceSum take
 * {@code axes} as an input instead of an attribute, and an even Split names its {@code num_outputs}. Every other
 * change in 18-21 adds types or optional attributes, so the remaining nodes mean the same at the higher opset.
 */
final class OpsetUpgrade {
    /** ONNX IR version that introduced opset 21 and the 4-bit types. */
    static final long IR_VERSION_FOR_21 = 10;

    private static final Set<String> AXES_INPUT_SINCE_18 = Set.of("ReduceMean", "ReduceMax", "ReduceMin",
            "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");

    private OpsetUpgrade() {
    }

    /** Raises {@code model} to at least {@code opset} (a no-op when it is already there). */
    static void atLeast(Model model, int opset) {
        long from = model.opset();
        if (from >= opset) {
            return;
        }
        Graph g = model.graph();
        if (from < 18 && opset >= 18) {
            for (Node n : List.copyOf(g.nodes())) {
                if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
                    continue;
                }
                if (AXES_INPUT_SINCE_18.contains(n.opType()) && n.attribute("axes") != null) {
                    long[] axes = n.intsAttr("axes", null);
                    n.removeAttribute("axes");
                    n.setInput(1, g.setInitializer(g.uniqueName(n.name() + "/axes"),
                            Tensor.ofLongs(axes, axes.length)));
                } else if (n.opType().equals("Split") && (n.inputCount() < 2 || n.input(1) == null)
                        && n.attribute("num_outputs") == null) {
                    n.setAttribute(Attribute.of("num_outputs", (long) n.outputs().size()));
                }
            }
        }
        model.opsets().put("", (long) opset);
        IntegerLinears.redefineIfUsed(model);
        model.opsets().remove("ai.onnx");
        if (opset >= 21 && model.irVersion() < IR_VERSION_FOR_21) {
            model.setIrVersion(IR_VERSION_FOR_21);
        }
    }
}
