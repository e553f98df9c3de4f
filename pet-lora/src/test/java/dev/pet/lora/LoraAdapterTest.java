package dev.pet.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.ServiceLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraAdapterTest {
    private static final long[] IDS = {464, 3290, 286, 262, 1578, 11, 290, 50256, 17, 9};
    static PretrainedModel base;
    private static OrtEngine engine;
    private static float[] baseLogits;
    private final LoraAdapter lora = new LoraAdapter();

    @TempDir
    Path dir;

    @BeforeAll
    static void setUp() {
        base = new Gpt2Provider().load(new ModelRequest("gpt2-tiny", Map.of(), 3));
        engine = OrtEngine.cpu();
        baseLogits = logits(base.model());
    }

    @AfterAll
    static void tearDown() {
        engine.close();
    }

    static float[] logits(Model m) {
        try (CompiledGraph g = engine.compile(m)) {
            long[] mask = new long[IDS.length];
            java.util.Arrays.fill(mask, 1);
            Map<String, Tensor> out = g.run(Map.of("input_ids", Tensor.ofLongs(IDS, 1, IDS.length),
                    "attention_mask", Tensor.ofLongs(mask, 1, IDS.length)));
            return out.get("logits").toFloatArray();
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    private PetModel pet(Map<String, Object> cfg) {
        return lora.getPetModel(base, lora.parseConfig(cfg));
    }

    /** Random values for every trainable, so B is non-zero and the adapter changes the model. */
    private static PetModel randomised(PetModel m, long seed) {
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

    @Test
    void trainableCountEqualsTheFormulaAndBaseWeightsStayFrozen() {
        PetModel m = pet(Map.of("r", 4, "lora_alpha", 8, "target_modules", ".*(c_attn|c_proj)"));
        long expected = 0;
        int modules = 0;
        for (LinearModule lm : base.anatomy().linears()) {
            if (lm.path().matches(".*(c_attn|c_proj)")) {
                expected += 4 * (lm.inFeatures() + lm.outFeatures());
                modules++;
            }
        }
        assertEquals(6, modules, "c_attn, attn.c_proj and mlp.c_proj in two blocks");
        assertEquals(expected, m.trainableParameterCount());
        assertEquals(2 * modules, m.trainables().size());
        base.model().graph().initializers().forEach((name, t) ->
                assertEquals(t.buffer(), m.model().graph().initializer(name).buffer(), "untouched: " + name));
        assertTrue(m.trainables().stream().allMatch(n -> n.contains(".lora_")));
    }

    @Test
    void withBZeroThePetModelReproducesTheBaseLogits() {
        PetModel m = pet(Map.of("lora_rank", 8, "lora_alpha", 16, "lora_dropout", 0.1));
        assertTrue(maxDiff(baseLogits, logits(m.inferenceModel())) <= 1e-6);
    }

    @Test
    void targetsFollowPeftMatchingRules() {
        assertEquals(List.of("transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"),
                LoraAdapter.targets(base, lora.parseConfig(Map.of())).stream().map(LinearModule::path).toList(),
                "GPT-2 default: c_attn");
        assertEquals(List.of("transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"),
                LoraAdapter.targets(base, lora.parseConfig(Map.of("target_modules", List.of("c_proj"),
                        "layers_to_transform", List.of(1)))).stream().map(LinearModule::path).toList());
        assertEquals(1, LoraAdapter.targets(base, lora.parseConfig(Map.of("target_modules", List.of("c_proj"),
                "exclude_modules", List.of("mlp.c_proj"), "layers_to_transform", 0))).size());
        // A regex string is full-matched: 'c_attn' alone matches no full path.
        PetException e = assertThrows(PetException.class, () -> LoraAdapter.targets(base,
                lora.parseConfig(Map.of("reg_rules", "c_attn"))));
        assertTrue(e.getMessage().contains("transformer.h.0.mlp.c_fc"), "lists candidates: " + e.getMessage());
        LoraConfig c = lora.parseConfig(Map.of("r", 8, "rank_pattern", Map.of("h.1.attn.c_attn", 2),
                "alpha_pattern", Map.of("c_attn", 4), "use_rslora", true));
        assertEquals(2, c.rankFor("transformer.h.1.attn.c_attn"));
        assertEquals(8, c.rankFor("transformer.h.0.attn.c_attn"));
        assertEquals(4 / Math.sqrt(2), c.scalingFor("transformer.h.1.attn.c_attn"), 1e-12);
    }

    @Test
    void rejectsUnknownAndInvalidKeys() {
        PetException e = assertThrows(PetException.class, () -> lora.parseConfig(Map.of("lora_rnk", 8)));
        assertTrue(e.getMessage().contains("'lora_rnk'") && e.getMessage().contains("lora_rank"), e.getMessage());
        assertThrows(PetException.class, () -> lora.parseConfig(Map.of("r", 0)));
        assertThrows(PetException.class, () -> lora.parseConfig(Map.of("r", 8, "lora_rank", 4)));
        assertThrows(PetException.class, () -> lora.parseConfig(Map.of("lora_a_init", "fancy")));
    }

    @Test
    void initialisersAreHonoured() {
        PetModel m = pet(Map.of("r", 8, "lora_a_init", "normal", "lora_b_init", "ones"));
        float[] a = m.model().graph().initializer(LoraAdapter.aName("transformer.h.0.attn.c_attn")).toFloatArray();
        float[] b = m.model().graph().initializer(LoraAdapter.bName("transformer.h.0.attn.c_attn")).toFloatArray();
        double var = 0;
        for (float v : a) {
            var += v * v / a.length;
        }
        assertEquals(0.01, Math.sqrt(var), 0.002, "normal: std 0.01");
        for (float v : b) {
            assertEquals(1f, v);
        }
        PetModel k = pet(Map.of("r", 8));
        float[] ka = k.model().graph().initializer(LoraAdapter.aName("transformer.h.0.attn.c_attn")).toFloatArray();
        double bound = 1 / Math.sqrt(64);
        for (float v : ka) {
            assertTrue(Math.abs(v) <= bound, "kaiming-uniform(a=sqrt 5) stays within 1/sqrt(in)");
        }
    }

    @Test
    void savesPeftLayoutAndLoadsItBackExactly() throws Exception {
        PetModel m = randomised(pet(Map.of("r", 4, "lora_alpha", 8, "target_modules", List.of("c_attn", "c_fc"))),
                7);
        lora.saveAdapter(m, m.trainableTensors(), dir);
        Map<String, Tensor> file = SafeTensors.read(dir.resolve(LoraAdapter.WEIGHTS_FILE));
        assertEquals(8, file.size());
        assertArrayEquals(new long[] {4, 64}, file.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight")
                .shape());
        assertArrayEquals(new long[] {192, 4}, file.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight")
                .shape());
        assertArrayEquals(new long[] {256, 4}, file.get("base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight")
                .shape());
        @SuppressWarnings("unchecked")
        Map<String, Object> cfg = new ObjectMapper().readValue(dir.resolve(LoraAdapter.CONFIG_FILE).toFile(),
                Map.class);
        assertEquals("LORA", cfg.get("peft_type"));
        assertEquals(4, cfg.get("r"));
        assertEquals(8.0, ((Number) cfg.get("lora_alpha")).doubleValue());
        assertEquals(List.of("c_attn", "c_fc"), cfg.get("target_modules"));
        assertEquals(true, cfg.get("fan_in_fan_out"));
        assertEquals("none", cfg.get("bias"));
        assertEquals("CAUSAL_LM", cfg.get("task_type"));

        PetModel fresh = pet(Map.of("r", 4, "lora_alpha", 8, "target_modules", List.of("c_attn", "c_fc")));
        PetModel loaded = lora.loadAdapter(fresh, dir);
        m.trainableTensors().forEach((k, t) -> assertEquals(t.buffer(), loaded.trainableTensors().get(k).buffer(), k));
        assertArrayEquals(logits(m.inferenceModel()), logits(loaded.inferenceModel()));
    }

    @Test
    void anAdapterWrittenInPeftLayoutChangesTheLogitsAsTheFormulaSays() throws Exception {
        // Written by hand: PEFT's keys and orientation, A [r, in], B [out, r], alpha 12, r 3 -> scaling 4.
        Random r = new Random(11);
        Map<String, Tensor> file = new LinkedHashMap<>();
        Map<String, float[][]> factors = new LinkedHashMap<>();
        for (int layer = 0; layer < 2; layer++) {
            String p = "transformer.h." + layer + ".attn.c_attn";
            float[] a = new float[3 * 64];
            float[] b = new float[192 * 3];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) r.nextGaussian() * 0.1f;
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) r.nextGaussian() * 0.1f;
            }
            file.put(LoraAdapter.peftAKey(p), Tensor.ofFloats(a, 3, 64));
            file.put(LoraAdapter.peftBKey(p), Tensor.ofFloats(b, 192, 3));
            factors.put(p, new float[][] {a, b});
        }
        Files.createDirectories(dir);
        SafeTensors.write(dir.resolve(LoraAdapter.WEIGHTS_FILE), file, Map.of("format", "pt"));
        Files.writeString(dir.resolve(LoraAdapter.CONFIG_FILE), "{\"peft_type\": \"LORA\", \"r\": 3, "
                + "\"lora_alpha\": 12, \"target_modules\": [\"c_attn\"], \"fan_in_fan_out\": true}");
        PetModel loaded = lora.loadAdapter(pet(Map.of("r", 3, "lora_alpha", 12)), dir);
        float[] got = logits(loaded.inferenceModel());
        assertTrue(maxDiff(got, baseLogits) > 1e-3, "the adapter changes the model");

        // Reference: the base model with W[in,out] + 4 * (B A)^T computed naively here.
        Model expected = base.model().copy();
        for (Map.Entry<String, float[][]> e : factors.entrySet()) {
            String w = e.getKey() + ".weight";
            float[] wv = expected.graph().initializer(w).toFloatArray();
            float[] a = e.getValue()[0];
            float[] b = e.getValue()[1];
            for (int i = 0; i < 64; i++) {
                for (int o = 0; o < 192; o++) {
                    double d = 0;
                    for (int k = 0; k < 3; k++) {
                        d += (double) b[o * 3 + k] * a[k * 64 + i];
                    }
                    wv[i * 192 + o] += (float) (4 * d);
                }
            }
            expected.graph().setInitializer(w, Tensor.ofFloats(wv, 64, 192));
        }
        assertTrue(maxDiff(logits(expected), got) <= 1e-5, "diff " + maxDiff(logits(expected), got));
    }

    @Test
    void mergedExportGivesTheUnmergedLogits() {
        PetModel m = randomised(pet(Map.of("r", 4, "lora_alpha", 8, "target_modules", ".*")), 5);
        Model merged = LoraAdapter.merge(m, m.trainableTensors());
        assertEquals(base.model().graph().initializers().size(), merged.graph().initializers().size());
        double d = maxDiff(logits(m.inferenceModel()), logits(merged));
        assertTrue(d <= 1e-5, "max |merged - unmerged| = " + d);
    }

    @Test
    void loadingAMismatchedAdapterNamesTheTensorAndShapes() throws Exception {
        PetModel m = randomised(pet(Map.of("r", 4)), 1);
        lora.saveAdapter(m, m.trainableTensors(), dir);
        PetException e = assertThrows(PetException.class, () -> lora.loadAdapter(pet(Map.of("r", 2)), dir));
        assertTrue(e.getMessage().contains("adapter_config.json") && e.getMessage().contains("r for")
                && e.getMessage().contains("is 4") && e.getMessage().contains("gives 2"), e.getMessage());
        // A config whose r disagrees with its own tensors: the shapes are checked against the file's r.
        Path cfg = dir.resolve(LoraAdapter.CONFIG_FILE);
        Files.writeString(cfg, Files.readString(cfg).replace("\"r\" : 4", "\"r\" : 2"));
        e = assertThrows(PetException.class, () -> lora.loadAdapter(pet(Map.of("r", 2, "lora_alpha", 8)), dir));
        assertTrue(e.getMessage().contains("lora_A.weight") && e.getMessage().contains("[4, 64]")
                && e.getMessage().contains("[2, 64]"), e.getMessage());
    }

    @Test
    void foundThroughServiceLoaderByTypeAndAlias() throws Exception {
        PetAdapters registry = PetAdapters.discover(LoraAdapterTest.class.getClassLoader());
        assertTrue(registry.adapter("LoRA") instanceof LoraAdapter);
        assertTrue(registry.adapter("GPT2WithLora") instanceof LoraAdapter);
        assertTrue(ServiceLoader.load(PetAdapter.class).stream().anyMatch(p -> p.type() == LoraAdapter.class));
        String services = new String(LoraAdapterTest.class.getResourceAsStream(
                "/META-INF/services/dev.pet.api.PetAdapter").readAllBytes()).trim();
        String moduleInfo = Files.readString(Path.of("src/main/java/module-info.java"));
        assertTrue(moduleInfo.contains("provides PetAdapter with LoraAdapter") && services.equals(
                LoraAdapter.class.getName()), "module-info and META-INF/services name the same class");
    }
}
