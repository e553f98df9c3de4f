package dev.pet.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.AdapterFiles;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.llama.LlamaProvider;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LoRA on every Llama projection: PEFT key names and orientation, merge equals the unmerged model. */
class LoraOnLlamaTest {
    private static final long[] IDS = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
    private static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");
    private static PretrainedModel base;
    private static OrtEngine engine;
    private final LoraAdapter lora = new LoraAdapter();

    @TempDir
    Path dir;

    @BeforeAll
    static void setUp() {
        base = new LlamaProvider().load(new ModelRequest("llama-tiny", Map.of(), 3));
        engine = OrtEngine.cpu();
    }

    @AfterAll
    static void tearDown() {
        engine.close();
    }

    private static float[] logits(Model m) {
        try (CompiledGraph g = engine.compile(m)) {
            long[] mask = new long[IDS.length];
            java.util.Arrays.fill(mask, 1);
            return g.run(Map.of("input_ids", Tensor.ofLongs(IDS, 1, IDS.length), "attention_mask",
                    Tensor.ofLongs(mask, 1, IDS.length))).get("logits").toFloatArray();
        }
    }

    private PetModel randomised(long seed) {
        PetModel m = lora.getPetModel(base, lora.parseConfig(Map.of("r", 4, "lora_alpha", 8, "target_modules",
                ALL)));
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
    void targetsEveryProjectionWithPeftKeysAndShapes() {
        PetModel m = randomised(1);
        assertEquals(2 * 7 * 2, m.trainables().size(), m.trainables().toString());
        lora.saveAdapter(m, m.trainableTensors(), dir);
        Map<String, Tensor> saved = AdapterFiles.readWeights(dir);
        // llama-tiny: width 64, 4 heads of 16, 2 key/value heads, MLP 128, r = 4.
        assertArrayEquals(new long[] {4, 64},
                saved.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape());
        assertArrayEquals(new long[] {64, 4},
                saved.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").shape());
        assertArrayEquals(new long[] {32, 4},
                saved.get("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight").shape());
        assertArrayEquals(new long[] {4, 128},
                saved.get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").shape());
        String config = AdapterFiles.readConfig(dir, "LORA").toString();
        assertTrue(config.contains("fan_in_fan_out=false"), config);
    }

    @Test
    void defaultTargetsAreQAndVAndAllLinearTakesEveryProjection() {
        PetModel byDefault = lora.getPetModel(base, lora.parseConfig(Map.of("r", 4)));
        assertEquals(List.of("q_proj", "v_proj"), byDefault.trainables().stream()
                .map(n -> n.replaceAll(".*\\.(\\w+_proj)\\..*", "$1")).distinct().sorted().toList());
        PetModel all = lora.getPetModel(base, lora.parseConfig(Map.of("r", 4, "target_modules", "all-linear")));
        assertEquals(2 * 7 * 2, all.trainables().size(), all.trainables().toString());
    }

    @Test
    void mergedModelGivesTheUnmergedLogits() {
        PetModel m = randomised(2);
        Model merged = LoraAdapter.merge(m, m.trainableTensors());
        assertEquals(base.model().graph().initializers().size(), merged.graph().initializers().size());
        float[] unmerged = logits(m.inferenceModel());
        float[] folded = logits(merged);
        float[] plain = logits(base.model());
        double d = 0;
        double moved = 0;
        for (int i = 0; i < folded.length; i++) {
            d = Math.max(d, Math.abs(folded[i] - unmerged[i]));
            moved = Math.max(moved, Math.abs(plain[i] - unmerged[i]));
        }
        assertTrue(moved > 1e-3, "the adapter did not change the model: " + moved);
        assertTrue(d <= 1e-5, "max |merged - unmerged| = " + d);
    }
}
