package dev.pet.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.AdapterFiles;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A PEFT adapter's own adapter_config.json defines it (r, lora_alpha, target_modules, use_rslora, patterns); a run
 * config may restate but not contradict it; sizes are validated; base tensors trained beside LoRA travel as PEFT's
 * modules_to_save.
 */
class LoraAdapterConfigTest {
    private final LoraAdapter lora = new LoraAdapter();

    @TempDir
    Path dir;

    @BeforeAll
    static void setUp() {
        LoraAdapterTest.setUp();
    }

    @AfterAll
    static void tearDown() {
        LoraAdapterTest.tearDown();
    }

    private static float[] logits(Model m) {
        return LoraAdapterTest.logits(m);
    }

    private static double maxDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    private PetModel trained(Map<String, Object> cfg, long seed) {
        PetModel m = lora.getPetModel(LoraAdapterTest.base, lora.parseConfig(cfg));
        Random r = new Random(seed);
        Map<String, Tensor> v = new LinkedHashMap<>();
        m.trainableTensors().forEach((k, t) -> {
            float[] f = new float[(int) t.elementCount()];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) (r.nextGaussian() * 0.2);
            }
            v.put(k, Tensor.ofFloats(f, t.shape()));
        });
        return m.withTrainables(v);
    }

    /** Rewrites one adapter_config.json field, as a hand-edited or foreign adapter would have it. */
    private void setConfig(String key, Object value) {
        Map<String, Object> cfg = PeftFiles.config(dir);
        cfg.put(key, value);
        PeftFiles.write(dir, cfg, PeftFiles.tensors(dir));
    }

    private PetException loadFails(Map<String, Object> runConfig) {
        return assertThrows(PetException.class,
                () -> PetAdapters.fromAdapter(lora, LoraAdapterTest.base, runConfig, dir));
    }

    @Test
    void theAdaptersAlphaAndRankDefineTheModelWhenTheRunDoesNotSayThem() {
        Map<String, Object> cfg = Map.of("r", 4, "lora_alpha", 64, "target_modules", List.of("c_attn"),
                "use_rslora", true, "alpha_pattern", Map.of("h.1.attn.c_attn", 12));
        PetModel m = trained(cfg, 1);
        lora.saveAdapter(m, m.trainableTensors(), dir);
        PetModel loaded = PetAdapters.fromAdapter(lora, LoraAdapterTest.base, Map.of("lora_dropout", 0.1), dir);
        LoraConfig c = (LoraConfig) loaded.config();
        assertEquals(64.0, c.alpha());
        assertTrue(c.useRslora());
        assertEquals(12.0 / 2, c.scalingFor("transformer.h.1.attn.c_attn"), 1e-12);
        assertEquals(0, maxDiff(logits(m.inferenceModel()), logits(loaded.inferenceModel())));
    }

    @Test
    void aRunConfigContradictingTheAdapterIsAnErrorNamingBothValues() {
        PetModel m = trained(Map.of("r", 4, "lora_alpha", 64), 2);
        lora.saveAdapter(m, m.trainableTensors(), dir);
        PetException e = loadFails(Map.of("lora_alpha", 16));
        assertTrue(e.getMessage().contains("lora_alpha: 64") && e.getMessage().contains("lora_alpha: 16")
                && e.getMessage().contains(AdapterFiles.CONFIG_FILE), e.getMessage());
        e = loadFails(Map.of("lora_rank", 8));
        assertTrue(e.getMessage().contains("4") && e.getMessage().contains("8")
                && e.getMessage().contains(AdapterFiles.CONFIG_FILE), e.getMessage());
        e = loadFails(Map.of("target_modules", List.of("c_fc")));
        assertTrue(e.getMessage().contains("target_modules") && e.getMessage().contains("c_fc"), e.getMessage());
        // Restating the same values (as another type of number) is fine.
        PetAdapters.fromAdapter(lora, LoraAdapterTest.base, Map.of("r", 4.0, "lora_alpha", 64), dir);
    }

    @Test
    void absurdOrInconsistentSizesInTheAdapterConfigAreRefused() {
        PetModel m = trained(Map.of("r", 4), 3);
        lora.saveAdapter(m, m.trainableTensors(), dir);
        setConfig("r", 0);
        PetException e = loadFails(Map.of());
        assertTrue(e.getMessage().contains(AdapterFiles.CONFIG_FILE) && e.getMessage().contains("found 0"),
                e.getMessage());
        setConfig("r", 1e9);
        e = loadFails(Map.of());
        assertTrue(e.getMessage().contains("r 1000000000") && e.getMessage().contains("at most 64"),
                e.getMessage());
        setConfig("r", 1e12);
        e = loadFails(Map.of());
        assertTrue(e.getMessage().contains("out of range"), e.getMessage());
        setConfig("r", 2);
        e = loadFails(Map.of());
        assertTrue(e.getMessage().contains("[4, 64]") && e.getMessage().contains("[2, 64]"), e.getMessage());
        setConfig("r", 4);
        setConfig("use_dora", true);
        e = loadFails(Map.of());
        assertTrue(e.getMessage().contains("use_dora"), e.getMessage());
    }

    @Test
    void baseTensorsTrainedBesideLoraTravelAsModulesToSave() throws Exception {
        PetModel plain = lora.getPetModel(LoraAdapterTest.base, lora.parseConfig(Map.of("r", 4)));
        PetModel withLnF = PetAdapters.freezePretrainedModel(plain, List.of(), List.of("transformer.ln_f.*"));
        Random r = new Random(4);
        Map<String, Tensor> values = new LinkedHashMap<>();
        withLnF.trainableTensors().forEach((k, t) -> {
            float[] f = t.toFloatArray();
            for (int i = 0; i < f.length; i++) {
                f[i] += (float) (r.nextGaussian() * 0.2);
            }
            values.put(k, Tensor.ofFloats(f, t.shape()));
        });
        PetModel trained = withLnF.withTrainables(values);
        lora.saveAdapter(trained, values, dir);

        Map<String, Object> cfg = PeftFiles.config(dir);
        assertEquals(List.of("transformer.ln_f"), cfg.get("modules_to_save"));
        Map<String, Tensor> file = PeftFiles.tensors(dir);
        assertEquals(values.get("transformer.ln_f.weight").buffer(),
                file.get("base_model.model.transformer.ln_f.weight").buffer());
        assertTrue(file.containsKey("base_model.model.transformer.ln_f.bias"));

        // A run without freeze_exclude still gets them: the adapter defines them, trainable as PEFT makes them.
        PetModel loaded = lora.loadAdapter(plain, dir);
        assertTrue(loaded.trainables().containsAll(List.of("transformer.ln_f.weight", "transformer.ln_f.bias")));
        float[] expected = logits(trained.inferenceModel());
        assertEquals(0, maxDiff(expected, logits(loaded.inferenceModel())));
        var baseInit = LoraAdapterTest.base.model().graph();
        PetModel withoutLnF = trained.withTrainables(Map.of(
                "transformer.ln_f.weight", baseInit.initializer("transformer.ln_f.weight"),
                "transformer.ln_f.bias", baseInit.initializer("transformer.ln_f.bias")));
        assertTrue(maxDiff(expected, logits(withoutLnF.inferenceModel())) > 1e-3, "the trained ln_f matters");
        double merged = maxDiff(expected, logits(LoraAdapter.merge(loaded, loaded.trainableTensors())));
        assertTrue(merged <= 1e-5, "the merged export keeps them: " + merged);

        // A listed module whose tensors are missing would silently lose its training: refused.
        Map<String, Tensor> lost = new LinkedHashMap<>(file);
        lost.remove("base_model.model.transformer.ln_f.weight");
        lost.remove("base_model.model.transformer.ln_f.bias");
        PeftFiles.write(dir, cfg, lost);
        PetException e = assertThrows(PetException.class, () -> lora.loadAdapter(plain, dir));
        assertTrue(e.getMessage().contains("transformer.ln_f") && e.getMessage().contains("modules_to_save"),
                e.getMessage());
        assertTrue(Files.exists(dir.resolve(AdapterFiles.WEIGHTS_FILE)));
    }
}
