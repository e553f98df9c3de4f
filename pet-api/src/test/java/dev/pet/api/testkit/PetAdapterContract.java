package dev.pet.api.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetAdapter;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What every PET algorithm must satisfy. A plugin's test extends this class and supplies the adapter, a base model,
 * a way to compute logits, a config and the formula for its trainable-parameter count.
 */
public abstract class PetAdapterContract {
    @TempDir
    protected Path tempDir;

    protected abstract PetAdapter<?> adapter();

    protected abstract PretrainedModel base();

    /** Logits of a forward model on a fixed input, flattened. */
    protected abstract float[] logits(Model model);

    protected abstract Map<String, Object> config();

    /** The trainable-parameter count the algorithm's formula gives for {@link #config()} on {@link #base()}. */
    protected abstract long expectedTrainableCount(PretrainedModel base);

    /** Type names and aliases ServiceLoader must find this adapter by. */
    protected abstract java.util.List<String> names();

    /** Whether the algorithm's initial values leave the model unchanged (not so for prefix tuning). */
    protected boolean startsAsTheBaseModel() {
        return true;
    }

    protected PetModel petModel() {
        return adapter().getPetModel(base(), config());
    }

    protected static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length, "logit counts differ");
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    /** Random values for every trainable tensor, so the adapter changes the model. */
    protected static PetModel randomised(PetModel m, long seed) {
        Random r = new Random(seed);
        Map<String, Tensor> v = new LinkedHashMap<>();
        m.trainableTensors().forEach((k, t) -> {
            double[] d = new double[(int) t.elementCount()];
            for (int i = 0; i < d.length; i++) {
                d[i] = r.nextGaussian() * 0.1;
            }
            v.put(k, Tensor.fromDoubles(t.dataType(), d, t.shape()));
        });
        return m.withTrainables(v);
    }

    @Test
    void trainableCountEqualsTheFormula() {
        assertEquals(expectedTrainableCount(base()), petModel().trainableParameterCount());
    }

    @Test
    void initialValuesReproduceTheBaseLogits() {
        org.junit.jupiter.api.Assumptions.assumeTrue(startsAsTheBaseModel(), "not an identity-initialised method");
        double d = maxAbsDiff(logits(base().model()), logits(petModel().inferenceModel()));
        assertTrue(d <= 1e-6, "max |pet - base| = " + d);
    }

    @Test
    void baseWeightsAreNotTouched() {
        PetModel pet = petModel();
        base().model().graph().initializers().forEach((name, t) -> {
            Tensor after = pet.base().model().graph().initializer(name);
            assertEquals(t.buffer(), after.buffer(), "base initializer " + name);
        });
    }

    @Test
    void unknownConfigKeysAreRejectedNamingTheKey() {
        Map<String, Object> bad = new LinkedHashMap<>(config());
        bad.put("definitely_not_a_key", 1);
        PetException e = assertThrows(PetException.class, () -> adapter().parseConfig(bad));
        assertTrue(e.getMessage().contains("definitely_not_a_key"), e.getMessage());
    }

    @Test
    void saveThenLoadGivesIdenticalTensorsAndLogits() {
        PetModel trained = randomised(petModel(), 3);
        float[] before = logits(trained.inferenceModel());
        assertTrue(maxAbsDiff(before, logits(base().model())) > 1e-4, "random trainables change the model");
        Path dir = tempDir.resolve("adapter");
        adapter().saveAdapter(trained, trained.trainableTensors(), dir);
        PetModel loaded = adapter().loadAdapter(petModel(), dir);
        trained.trainableTensors().forEach((k, t) ->
                assertEquals(t.buffer(), loaded.trainableTensors().get(k).buffer(), "tensor " + k));
        assertEquals(0, maxAbsDiff(before, logits(loaded.inferenceModel())));
    }

    /**
     * Writes an adapter directory for these trainable values exactly as PEFT lays it out (its key names, tensor
     * shapes and orientation, {@code adapter_config.json} fields), by code written in the test from PEFT's
     * documented format, not by the plugin. Algorithms PEFT lacks use their documented PET Runtime layout.
     */
    protected abstract void writeAsPeft(PetModel model, Map<String, Tensor> values, Path directory);

    /** Reads an adapter directory as PEFT would, into values by the PET model's tensor names, without the plugin. */
    protected abstract Map<String, Tensor> readAsPeft(PetModel model, Path directory);

    /** The config of the PEFT round trip, when PEFT's files cannot express {@link #config()} (prefix projection). */
    protected Map<String, Object> peftConfig() {
        return config();
    }

    /** Logits the model with these trainable values must give; override with an independent reference. */
    protected float[] referenceLogits(PetModel withValues) {
        return logits(withValues.inferenceModel());
    }

    /** Stated tolerance of the round trip against {@link #referenceLogits}: float32 logits of order 1. */
    protected double referenceTolerance() {
        return 1e-4;
    }

    @Test
    void anAdapterWrittenAsPeftLoadsAndReproducesTheReferenceLogits() {
        PetModel fresh = adapter().getPetModel(base(), peftConfig());
        PetModel trained = randomised(fresh, 11);
        float[] reference = referenceLogits(trained);
        Path dir = tempDir.resolve("written-as-peft");
        writeAsPeft(trained, trained.trainableTensors(), dir);
        double d = maxAbsDiff(logits(adapter().loadAdapter(fresh, dir).inferenceModel()), reference);
        assertTrue(d <= referenceTolerance(), "loadAdapter: max |logits - reference| = " + d);
        // With no run config at all, the adapter's own config defines the model.
        PetModel defined = PetAdapters.fromAdapter(adapter(), base(), Map.of(), dir);
        d = maxAbsDiff(logits(defined.inferenceModel()), reference);
        assertTrue(d <= referenceTolerance(), "fromAdapter with an empty pet_config: max |logits - reference| = " + d);
    }

    @Test
    void whatWeWritePassesTheIndependentReader() {
        PetModel fresh = adapter().getPetModel(base(), peftConfig());
        PetModel trained = randomised(fresh, 12);
        Path dir = tempDir.resolve("written-by-us");
        adapter().saveAdapter(trained, trained.trainableTensors(), dir);
        Map<String, Tensor> read = readAsPeft(fresh, dir);
        trained.trainableTensors().forEach((k, t) -> {
            Tensor r = read.get(k);
            org.junit.jupiter.api.Assertions.assertNotNull(r, "the reader found no value for " + k);
            org.junit.jupiter.api.Assertions.assertArrayEquals(t.shape(), r.shape(), "shape of " + k);
            org.junit.jupiter.api.Assertions.assertArrayEquals(t.toFloatArray(), r.toFloatArray(), 0f, k);
        });
    }

    @Test
    void foundThroughServiceLoaderByTypeAndAliases() {
        PetAdapters registry = PetAdapters.discover(getClass().getClassLoader());
        for (String name : names()) {
            assertEquals(adapter().getClass(), registry.adapter(name).getClass(), name);
        }
    }
}
