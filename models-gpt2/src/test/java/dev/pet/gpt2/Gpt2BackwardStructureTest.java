package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The backward graph of a GPT-2 with only the {@code c_attn} weights trainable (the benchmark's setting) computes
 * no gradient of a frozen weight: batch and sequence are symbolic, so the only statically shaped 2-D values a
 * backward node can produce are weight gradients, and none may have a frozen weight's shape. The embedding table
 * is frozen, so there is no scatter into it either.
 */
class Gpt2BackwardStructureTest {
    @Test
    void cAttnOnlyBackwardComputesNoFrozenWeightGradient() {
        Gpt2Config config = Gpt2Config.of(97, 32, 16, 2, 2);
        Gpt2Graph built = Gpt2Graph.build(TestModels.nonTrivial(config, 4), CausalLmGraphOptions.training());
        Model model = built.model().copy();
        Graph g = model.graph();
        Value loss = g.requireValue(CausalLmLoss.append(g, Gpt2Graph.INPUT_IDS, Gpt2Graph.ATTENTION_MASK,
                Gpt2Graph.LOGITS, (int) model.opset()).name());
        List<Value> trainables = new ArrayList<>();
        List<long[]> frozenShapes = new ArrayList<>();
        for (String name : new ArrayList<>(g.initializers().keySet())) {
            Tensor t = g.initializer(name);
            if (name.endsWith("attn.c_attn.weight")) {
                g.promoteInitializerToInput(name);
                trainables.add(g.requireValue(name));
            } else if (name.startsWith("transformer.") && t.rank() == 2) {
                frozenShapes.add(t.shape());
            }
        }
        assertEquals(config.nLayer(), trainables.size());
        int before = g.nodes().size();
        Map<String, Value> grads = Autodiff.gradients(g, loss, trainables, (int) model.opset());
        List<Node> backward = g.nodes().subList(before, g.nodes().size());
        Map<String, Integer> histogram = new TreeMap<>();
        for (Node n : backward) {
            histogram.merge(n.opType(), 1, Integer::sum);
            for (Value out : n.outputs()) {
                if (out != null && out.type().isStatic() && out.type().rank() == 2 && !grads.containsValue(out)) {
                    for (long[] frozen : frozenShapes) {
                        assertTrue(!Arrays.equals(frozen, out.type().shape()) || out.type().shape()[0] == 1,
                                "backward node computes a frozen-weight-shaped value: " + n);
                    }
                }
            }
            assertTrue(!n.opType().equals("ScatterND"), "gradient into a frozen embedding table: " + n);
        }
        System.out.println("GPT-2 c_attn-only backward: " + backward.size() + " nodes " + histogram);
        for (Value t : trainables) {
            Value gv = grads.get(t.name());
            assertTrue(gv.type().isStatic() && Arrays.equals(t.type().shape(), gv.type().shape()),
                    "gradient of " + t.name() + " is " + gv.type());
        }
    }
}
