package dev.pet.onnx.ir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class GraphTest {
    private static Node add(Graph g, String name, Value a, Value b) {
        return g.addNode("Add", "", name, List.of(a, b), List.of(name + "_out"), List.of());
    }

    @Test
    void copiesARegionRewiredToItsOwnCopies() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", TensorType.of(DataType.FLOAT, 2));
        Value y = g.addInput("y", TensorType.of(DataType.FLOAT, 2));
        Value w = g.setInitializer("w", Tensor.ofFloats(new float[] {1, 2}, 2));
        Node n1 = add(g, "n1", x, w);
        Node n2 = add(g, "n2", n1.output(0), x);
        java.util.Map<Value, Value> renamed = new java.util.HashMap<>(java.util.Map.of(x, y));
        Node c1 = g.addCopy(n1, renamed, "n1", "/copy");
        Node c2 = g.addCopy(n2, renamed, "n2", "/copy");
        assertEquals(List.of(y, w), c1.inputs(), "inputs renamed where a replacement exists, else shared");
        assertEquals(List.of(c1.output(0), y), c2.inputs(), "later copies read earlier copies");
        assertSame(c2.output(0), renamed.get(n2.output(0)));
        assertEquals("n1_out/copy", c1.output(0).name());
        assertTrue(!c1.name().equals(n1.name()), "node names stay unique: " + c1.name());
        assertEquals(n1.opType(), c1.opType());
        assertEquals(List.of(n1, c1), w.uses());
    }

    @Test
    void keepsUseDefChainsThroughEdits() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", TensorType.of(DataType.FLOAT, 2));
        Value w = g.setInitializer("w", Tensor.ofFloats(new float[] {1, 2}, 2));
        Node n1 = add(g, "n1", x, w);
        Node n2 = add(g, "n2", n1.output(0), n1.output(0));
        g.addOutput(n2.output(0));
        assertSame(n1, n1.output(0).producer());
        assertEquals(2, n1.output(0).uses().size(), "a node reading a value twice is listed twice");
        assertEquals(List.of(n1), x.uses());

        Node n3 = add(g, "n3", x, x);
        g.replaceAllUses(n1.output(0), n3.output(0));
        assertTrue(n1.output(0).uses().isEmpty());
        assertEquals(2, n3.output(0).uses().size());
        g.removeNode(n1);
        assertNull(g.value("n1_out"));
        assertEquals(List.of(n3, n3), x.uses());
    }

    @Test
    void replaceUsesRedirectsEveryReaderButTheExceptedOnes() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", null);
        Node y = add(g, "y", x, x);
        Node reader = g.addNode("Relu", "", "reader", List.of(y.output(0)), List.of("r"), List.of());
        g.addOutput(y.output(0));
        // y' = y + delta: the new Add keeps reading y, everything else reads y'.
        Node delta = g.addNode("Neg", "", "delta", List.of(y.output(0)), List.of("d"), List.of());
        Node sum = add(g, "sum", y.output(0), delta.output(0));
        g.replaceUses(y.output(0), sum.output(0), sum, delta);
        assertSame(sum.output(0), reader.input(0));
        assertSame(sum.output(0), g.outputs().get(0), "graph outputs follow");
        assertEquals(List.of(delta, sum), y.output(0).uses());
        assertEquals(List.of(reader), sum.output(0).uses());
        assertEquals(List.of(g.topologicalOrder().size()), List.of(4), "no cycle");
    }

    @Test
    void refusesToRemoveANodeWhoseOutputIsStillRead() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", null);
        Node n1 = add(g, "n1", x, x);
        g.addOutput(n1.output(0));
        OnnxException e = assertThrows(OnnxException.class, () -> g.removeNode(n1));
        assertTrue(e.getMessage().contains("n1_out"), e.getMessage());
    }

    @Test
    void sortsTopologicallyAndStably() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", null);
        Value late = g.newValue("late", null);
        Node consumer = g.addNode("Relu", "", "consumer", List.of(late), List.of("y"), List.of());
        Node unrelated = g.addNode("Neg", "", "unrelated", List.of(x), List.of("z"), List.of());
        Node producer = g.addNodeWithOutputs("Abs", "", "producer", List.of(x), List.of(late), List.of());
        assertEquals(List.of(unrelated, producer, consumer), g.topologicalOrder());
        g.sortTopologically();
        assertEquals(List.of(unrelated, producer, consumer), g.nodes());
    }

    @Test
    void detectsCyclesNamingANode() {
        Graph g = new Graph("g");
        Value a = g.newValue("a", null);
        Value b = g.newValue("b", null);
        g.addNodeWithOutputs("Neg", "", "first", List.of(b), List.of(a), List.of());
        g.addNodeWithOutputs("Neg", "", "second", List.of(a), List.of(b), List.of());
        OnnxException e = assertThrows(OnnxException.class, g::topologicalOrder);
        assertTrue(e.getMessage().contains("cycle"), e.getMessage());
    }

    @Test
    void removesDeadNodesAndInitializers() {
        Graph g = new Graph("g");
        Value x = g.addInput("x", null);
        Value w = g.setInitializer("w", Tensor.scalar(1f));
        Value dead = g.setInitializer("dead", Tensor.scalar(2f));
        Node live = add(g, "live", x, w);
        Node deadNode = add(g, "deadNode", x, dead);
        add(g, "deadToo", deadNode.output(0), x);
        g.addOutput(live.output(0));
        assertEquals(2, g.removeUnused());
        assertEquals(List.of(live), g.nodes());
        assertNull(g.initializer("dead"));
        assertEquals(1, g.initializers().size());
    }

    @Test
    void generatesUniqueNamesAndCopiesDeeply() {
        Graph g = new Graph("g");
        g.addInput("x", null);
        assertEquals("x_1", g.uniqueName("x"));
        g.newValue("x_1", null);
        assertEquals("x_2", g.uniqueName("x"));
        Value x = g.value("x");
        Node n = add(g, "n", x, x);
        g.addOutput(n.output(0));
        Graph c = g.copy();
        assertEquals(1, c.nodes().size());
        c.removeOutput(c.value("n_out"));
        c.removeNode(c.nodes().get(0));
        assertEquals(1, g.nodes().size(), "the original is unaffected");
        assertEquals(2, g.value("x").uses().size());
    }

    @Test
    void promotesInitializersToInputs() {
        Graph g = new Graph("g");
        Value w = g.setInitializer("w", Tensor.ofFloats(new float[] {1, 2, 3}, 3));
        Tensor data = g.promoteInitializerToInput("w");
        assertEquals(3, data.elementCount());
        assertTrue(w.isGraphInput());
        assertTrue(!w.isInitializer());
        assertEquals(TensorType.of(DataType.FLOAT, 3), w.type());
    }
}
