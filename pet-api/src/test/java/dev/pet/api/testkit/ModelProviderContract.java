package dev.pet.api.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceLoader;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What every model provider must satisfy, so a new model family proves itself by passing the same tests as the
 * first: discovery, seeded presets, an anatomy whose every name exists in the graph with the shapes PET methods rely
 * on, the Optimum input/output names, and a tokenizer that round-trips text. A provider's test extends this class.
 */
public abstract class ModelProviderContract {
    private PretrainedModel model;

    protected abstract ModelProvider provider();

    /** A small preset with seeded random weights. */
    protected abstract String tinyPreset();

    @BeforeEach
    void load() {
        model = provider().load(new ModelRequest(tinyPreset(), Map.of(), 7));
    }

    @Test
    void isFoundThroughServiceLoaderByItsIdAndAliases() {
        List<String> ids = new ArrayList<>();
        ServiceLoader.load(ModelProvider.class).forEach(p -> ids.add(p.id()));
        assertTrue(ids.contains(provider().id()), ids.toString());
        assertEquals(provider().id().toLowerCase(Locale.ROOT), provider().id());
        assertTrue(provider().aliases().contains(tinyPreset()), provider().aliases().toString());
        provider().aliases().forEach(a -> assertEquals(a.toLowerCase(Locale.ROOT), a, "aliases are lowercase"));
        assertEquals(provider().id(), model.providerId());
    }

    @Test
    void presetsAreSeeded() {
        PretrainedModel same = provider().load(new ModelRequest(tinyPreset(), Map.of(), 7));
        PretrainedModel other = provider().load(new ModelRequest(tinyPreset(), Map.of(), 8));
        LinearModule first = model.anatomy().linears().get(0);
        float[] a = model.model().graph().initializer(first.weight()).toFloatArray();
        assertArrayEquals(a, same.model().graph().initializer(first.weight()).toFloatArray());
        assertFalse(java.util.Arrays.equals(a, other.model().graph().initializer(first.weight()).toFloatArray()));
    }

    @Test
    void graphUsesTheCausalLmNames() {
        ModelAnatomy a = model.anatomy();
        Graph g = model.model().graph();
        List<String> inputs = g.inputs().stream().map(Value::name).toList();
        assertEquals("input_ids", a.inputIds());
        assertEquals("logits", a.logits());
        assertTrue(inputs.contains(a.inputIds()), inputs.toString());
        if (a.attentionMask() != null) {
            assertEquals("attention_mask", a.attentionMask());
            assertTrue(inputs.contains(a.attentionMask()), inputs.toString());
        }
        Value logits = g.outputs().stream().filter(v -> v.name().equals(a.logits())).findFirst().orElseThrow();
        assertEquals(3, logits.type().rank());
        assertEquals(Dim.of(model.vocabSize()), logits.type().dims().get(2));
        assertTrue(model.maxPositions() > 0);
    }

    @Test
    void everyLinearModuleNamesRealTensorsAndValues() {
        Graph g = model.model().graph();
        ModelAnatomy a = model.anatomy();
        assertFalse(a.linears().isEmpty());
        for (LinearModule m : a.linears()) {
            Tensor w = g.initializer(m.weight());
            assertNotNull(w, m.weight());
            long[] expected = m.weightInOut() ? new long[] {m.inFeatures(), m.outFeatures()}
                    : new long[] {m.outFeatures(), m.inFeatures()};
            assertArrayEquals(expected, w.shape(), m.path());
            if (m.bias() != null) {
                assertArrayEquals(new long[] {m.outFeatures()}, g.initializer(m.bias()).shape(), m.bias());
            }
            assertFalse(g.requireValue(m.input()).uses().isEmpty(), m.input());
            assertFalse(g.requireValue(m.output()).uses().isEmpty(), m.output());
            assertTrue(m.layer() >= -1 && m.layer() < a.layers().size(), m.path());
            assertTrue(m.weight().startsWith(m.path() + "."), "weights are named after their module: " + m.weight());
        }
    }

    @Test
    void layerAnatomyHasTheShapesPetMethodsRelyOn() {
        Graph g = model.model().graph();
        ModelAnatomy a = model.anatomy();
        assertFalse(a.layers().isEmpty());
        assertEquals(0, a.numHeads() % a.numKeyValueHeads());
        for (int i = 0; i < a.layers().size(); i++) {
            LayerAnatomy l = a.layers().get(i);
            assertEquals(i, l.index());
            for (String name : List.of(l.key(), l.value(), l.attentionBias(), l.attentionOutput(), l.mlpOutput(),
                    l.residualAfterAttention(), l.residualAfterMlp())) {
                assertFalse(g.requireValue(name).uses().isEmpty(), name + " has no reader to redirect");
            }
            for (String kv : List.of(l.key(), l.value())) {
                List<Dim> dims = g.requireValue(kv).type().dims();
                assertEquals(4, dims.size(), kv);
                assertEquals(Dim.of(a.numKeyValueHeads()), dims.get(1), kv + " [batch, kvHeads, keys, headDim]");
                assertEquals(Dim.of(a.headDim()), dims.get(3), kv);
            }
            assertTrue(g.requireValue(l.attentionBias()).type().hasRank(), l.attentionBias());
        }
        if (a.positionIds() != null) {
            assertFalse(g.requireValue(a.positionIds()).uses().isEmpty(), a.positionIds());
        }
    }

    @Test
    void tokenizerRoundTripsText() {
        String text = "The keeper lit the lamp.";
        long[] ids = model.tokenizer().encode(text);
        assertTrue(ids.length > 0);
        for (long id : ids) {
            assertTrue(id >= 0 && id < model.vocabSize(), "id " + id + " outside the model's vocabulary");
        }
        assertEquals(text, model.tokenizer().decode(ids));
        assertTrue(model.tokenizer().eosTokenId() < model.vocabSize());
        assertTrue(model.tokenizer().vocabularySize() <= model.vocabSize());
    }

    @Test
    void unknownNamesFailNamingThem() {
        PetException e = assertThrows(PetException.class,
                () -> provider().load(ModelRequest.of("no-such-model-xyz")));
        assertTrue(e.getMessage().contains("no-such-model-xyz"), e.getMessage());
    }
}
