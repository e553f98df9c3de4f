package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.ModelProvider;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The anatomy names values whose consumers are exactly what a PET method should redirect. */
class Gpt2AnatomyTest {
    private static final Gpt2Weights WEIGHTS = TestModels.nonTrivial(TestModels.tiny(), 9);

    @Test
    void everyLayerValueHasOnlyItsOwnBlockAsConsumer() {
        Gpt2Graph g = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.inference());
        Graph graph = g.model().graph();
        ModelAnatomy a = g.anatomy();
        assertEquals(2, a.layers().size());
        assertEquals(64, a.hiddenSize());
        assertEquals(4, a.numHeads());
        assertEquals(16, a.headDim());
        assertEquals("attention_mask", a.attentionMask());
        for (LayerAnatomy l : a.layers()) {
            String block = "/transformer/h." + l.index() + "/";
            for (String v : List.of(l.key(), l.value(), l.attentionBias(), l.attentionOutput(), l.mlpOutput())) {
                Value value = graph.requireValue(v);
                assertEquals(1, value.uses().size(), v + " should have one consumer");
                assertTrue(value.uses().get(0).name().startsWith(block), v + " is read outside its block");
                assertTrue(!value.isGraphOutput(), v + " must not be a graph output");
            }
            assertEquals("Add", graph.requireValue(l.attentionOutput()).uses().get(0).opType());
            assertEquals(l.residualAfterAttention(), graph.requireValue(l.attentionOutput()).uses().get(0)
                    .output(0).name());
            assertEquals(l.residualAfterMlp(), graph.requireValue(l.mlpOutput()).uses().get(0).output(0).name());
            // The key/value entering attention are copies of the present outputs, so rewiring them keeps the cache.
            assertEquals(Gpt2Graph.presentKey(l.index()), graph.requireValue(l.key()).producer().input(0).name());
            assertEquals(Gpt2Graph.presentValue(l.index()),
                    graph.requireValue(l.value()).producer().input(0).name());
        }
        assertTrue(!a.layers().get(0).attentionBias().equals(a.layers().get(1).attentionBias()));
    }

    @Test
    void linearModulesNameHuggingFacePathsWeightsAndValues() {
        Gpt2Graph g = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training());
        Graph graph = g.model().graph();
        List<LinearModule> mods = g.anatomy().linears();
        assertEquals(8, mods.size());
        String[] suffix = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
        long[][] dims = {{64, 192}, {64, 64}, {64, 256}, {256, 64}};
        for (int i = 0; i < mods.size(); i++) {
            LinearModule m = mods.get(i);
            int layer = i / 4;
            assertEquals("transformer.h." + layer + "." + suffix[i % 4], m.path());
            assertEquals(layer, m.layer());
            assertTrue(m.weightInOut());
            assertEquals(dims[i % 4][0], m.inFeatures());
            assertEquals(dims[i % 4][1], m.outFeatures());
            assertArrayEquals(new long[] {m.inFeatures(), m.outFeatures()}, graph.initializer(m.weight()).shape());
            assertNotNull(graph.initializer(m.bias()));
            Node producer = graph.requireValue(m.output()).producer();
            assertEquals("Add", producer.opType());
            assertEquals(m.bias(), producer.input(1).name());
            Node matMul = producer.input(0).producer();
            assertEquals(m.input(), matMul.input(0).name());
            assertEquals(m.weight(), matMul.input(1).name());
        }
        // Tied head: the embedding is the only vocabulary-sized initializer.
        long big = graph.initializers().values().stream().filter(t -> t.elementCount() >= 50257L * 64).count();
        assertEquals(1, big);
    }

    @Test
    void graphWithoutMaskOrCacheHasOnlyIdsAndLogits() {
        Gpt2Graph g = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training().withAttentionMask(false));
        assertEquals(List.of("input_ids"), g.model().graph().inputs().stream().map(Value::name).toList());
        assertEquals(List.of("logits"), g.model().graph().outputs().stream().map(Value::name).toList());
        assertNull(g.anatomy().attentionMask());
    }

    @Test
    void extendingOneLayersBiasChangesOnlyThatLayer() {
        // Mask key 0 for layer 1 only (a prefix plugin extends one layer's bias the same way): the result must
        // equal neither the plain model nor a model where every layer masks key 0.
        float[] plain = logits(Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training()));
        Gpt2Graph edited = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training());
        maskFirstKey(edited, 1);
        float[] layer1 = logits(edited);
        Gpt2Graph both = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training());
        maskFirstKey(both, 0);
        maskFirstKey(both, 1);
        float[] all = logits(both);
        assertTrue(maxDiff(plain, layer1) > 1e-3);
        assertTrue(maxDiff(all, layer1) > 1e-3);
        // Position 0 attends only to key 0 in every layer, so masking it there is excluded from the comparison;
        // the mask on layer 1 leaves layer 0's keys intact: check position 0 still matches the plain model.
        for (int v = 0; v < 50257; v++) {
            assertEquals(plain[v], layer1[v], 1e-5);
        }
    }

    private static void maskFirstKey(Gpt2Graph g, int layer) {
        Graph graph = g.model().graph();
        GraphBuilder b = new GraphBuilder(graph);
        Value bias = graph.requireValue(g.anatomy().layers().get(layer).attentionBias());
        // -1e4 on key 0 for queries 1..3 only; query 0 keeps its single key.
        float[] extra = new float[16];
        for (int q = 1; q < 4; q++) {
            extra[q * 4] = -1e4f;
        }
        Value extended = b.add(bias, b.constant(Tensor.ofFloats(extra, 1, 1, 4, 4)));
        graph.replaceAllUses(bias, extended);
        extended.producer().setInput(0, bias);
    }

    private static float[] logits(Gpt2Graph g) {
        try (Gpt2Session s = Gpt2Session.create(g);
                Gpt2Output o = s.run(new long[][] {{464, 2068, 7586, 21831}}, null)) {
            return o.logits().clone();
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    @Test
    void providerIsDeclaredInModuleInfoAndServicesFileAlike() throws IOException {
        String moduleInfo = Files.readString(Path.of("src/main/java/module-info.java"));
        Matcher m = Pattern.compile("provides\\s+dev\\.pet\\.api\\.ModelProvider\\s+with\\s+([\\w.]+)\\s*;")
                .matcher(moduleInfo);
        assertTrue(m.find(), "module-info.java should provide dev.pet.api.ModelProvider");
        String services = Files.readString(Path.of(
                "src/main/resources/META-INF/services/dev.pet.api.ModelProvider")).strip();
        assertEquals(m.group(1), services);
        ModelProvider found = ServiceLoader.load(ModelProvider.class).stream().map(ServiceLoader.Provider::get)
                .filter(p -> p.id().equals("gpt2")).findFirst().orElseThrow();
        assertEquals(services, found.getClass().getName());
        assertTrue(found.aliases().contains("gpt2-tiny"));
    }

    @Test
    void doubleGraphKeepsDoubleCache() {
        Gpt2Graph g = Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.inference().withDataType(DataType.DOUBLE));
        assertEquals(DataType.DOUBLE, g.model().graph().requireValue("past_key_values.0.key").type().dataType());
        assertEquals(DataType.DOUBLE, g.model().graph().requireValue("present.1.value").type().dataType());
    }
}
