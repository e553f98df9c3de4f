package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * If branches written with {@link Subgraphs#attribute} run in ONNX Runtime, and {@link Subgraphs#inlineIf} gives a
 * graph without the If that ONNX Runtime evaluates to the taken branch's result: outer-scope reads resolved, branch
 * initializers moved out, a branch value named like an outer one ('y') kept apart, node scopes kept.
 */
class SubgraphsTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();
    private static final float[] X = {1.5f, -2f};

    /**
     * then: y = x + w (outer w); else: y = x * w_else (its own initializer, [3, 4]); both under node scope /m/ and
     * writing 'y', the If's own output name.
     */
    private static Model ifModel() {
        Graph g = new Graph("outer");
        GraphBuilder b = new GraphBuilder(g);
        b.input("x", TensorType.of(DataType.FLOAT, 2));
        b.input("flag", TensorType.of(DataType.BOOL, 1));
        b.initializer("w", Tensor.ofFloats(new float[] {10f, 20f}, 2));
        Node n = g.addNode("If", "", "select", List.of(g.value("flag")), List.of("y"), List.of(
                Subgraphs.attribute("then_branch", branch("Add", null)),
                Subgraphs.attribute("else_branch", branch("Mul", Tensor.ofFloats(new float[] {3f, 4f}, 2)))));
        n.output(0).setType(TensorType.of(DataType.FLOAT, 2));
        g.addOutput(n.output(0));
        return new Model(g, 17);
    }

    private static Graph branch(String op, Tensor ownW) {
        Graph g = new Graph(op);
        Value x = g.newValue("x", TensorType.of(DataType.FLOAT, 2));
        Value w = ownW == null ? g.newValue("w", TensorType.of(DataType.FLOAT, 2))
                : g.setInitializer("w_else", ownW);
        Node n = g.addNode(op, "", "/m/" + op, List.of(x, w), List.of("y"), List.of());
        n.output(0).setType(TensorType.of(DataType.FLOAT, 2));
        g.addOutput(n.output(0));
        return g;
    }

    private static float[] run(Model m, Boolean flag) throws Exception {
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(m), new OrtSession.SessionOptions())) {
            Map<String, OnnxTensor> feeds = new HashMap<>();
            feeds.put("x", OnnxTensor.createTensor(ENV, FloatBuffer.wrap(X), new long[] {2}));
            if (flag != null) {
                feeds.put("flag", OnnxTensor.createTensor(ENV, new boolean[] {flag}));
            }
            try (OrtSession.Result r = s.run(feeds)) {
                FloatBuffer fb = ((OnnxTensor) r.get("y").orElseThrow()).getFloatBuffer();
                float[] out = new float[fb.remaining()];
                fb.get(out);
                return out;
            } finally {
                feeds.values().forEach(OnnxTensor::close);
            }
        }
    }

    @Test
    void inlinedBranchComputesWhatTheIfComputes() throws Exception {
        Model m = ifModel();
        for (boolean taken : new boolean[] {true, false}) {
            float[] want = run(m, taken);
            assertArrayEquals(taken ? new float[] {11.5f, 18f} : new float[] {4.5f, -8f}, want);
            Model inlined = m.copy();
            Subgraphs.inlineIf(inlined.graph().nodes().get(0), taken);
            inlined.graph().removeInput(inlined.graph().value("flag"));
            inlined.graph().removeUnused();
            assertTrue(inlined.graph().nodes().stream().noneMatch(n -> n.opType().equals("If")));
            assertTrue(inlined.graph().nodes().stream().anyMatch(n -> n.name().equals("/m/" + (taken ? "Add"
                    : "Mul"))), "node scopes are kept");
            assertEquals("y", inlined.graph().outputs().get(0).name());
            assertArrayEquals(want, run(inlined, null));
        }
        // The else branch's own initializer moves to the graph.
        Model inlined = m.copy();
        Subgraphs.inlineIf(inlined.graph().nodes().get(0), false);
        assertArrayEquals(new float[] {3f, 4f}, inlined.graph().initializer("w_else").toFloatArray());
        assertArrayEquals(new float[] {10f, 20f}, inlined.graph().initializer("w").toFloatArray());
    }

    @Test
    void mismatchedBranchesAndUndefinedNamesAreErrorsNamingTheNode() {
        Model m = ifModel();
        Node n = m.graph().nodes().get(0);
        Graph wide = branch("Add", null);
        wide.addOutput(wide.value("x"));
        n.setAttribute(Subgraphs.attribute("then_branch", wide));
        OnnxException e = assertThrows(OnnxException.class, () -> Subgraphs.inlineIf(n, true));
        assertEquals("If node 'select': then_branch has 2 outputs, the node 1", e.getMessage());

        Model m2 = ifModel();
        Node n2 = m2.graph().nodes().get(0);
        m2.graph().removeInitializer("w");
        e = assertThrows(OnnxException.class, () -> Subgraphs.inlineIf(n2, true));
        assertEquals("If node 'select': then_branch reads 'w', which the enclosing graph does not define",
                e.getMessage());
        e = assertThrows(OnnxException.class, () -> Subgraphs.read(n2, "body"));
        assertTrue(e.getMessage().contains("attribute 'body' is missing"), e.getMessage());
    }
}
