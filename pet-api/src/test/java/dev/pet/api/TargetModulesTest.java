package dev.pet.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** PEFT's check_target_module_exists semantics, on Llama-style and GPT-2-style module names. */
class TargetModulesTest {
    private static final List<String> LLAMA_PARTS = List.of("self_attn.q_proj", "self_attn.k_proj",
            "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    /** Two Llama-style blocks plus an untied output head producing the logits. */
    private static PretrainedModel llama(List<String> defaults) {
        List<LinearModule> linears = new ArrayList<>();
        for (int layer = 0; layer < 2; layer++) {
            for (String part : LLAMA_PARTS) {
                String path = "model.layers." + layer + "." + part;
                linears.add(new LinearModule(path, path + ".weight", null, path + "/in", path + "/out", 4, 4, layer,
                        false));
            }
        }
        linears.add(new LinearModule("lm_head", "lm_head.weight", null, "h", "logits", 4, 10, -1, false));
        ModelAnatomy anatomy = new ModelAnatomy(List.of(), linears, 4, 1, 4, "input_ids", null, null, "logits", 1, defaults);
        return new PretrainedModel("llama", "tiny-llama", new Model(new Graph("g"), 17), anatomy, null, Map.of(),
                10, 16);
    }

    private static TargetModules bind(Map<String, Object> raw) {
        Map<String, String> keys = new LinkedHashMap<>();
        for (String k : List.of("target_modules", "exclude_modules", "layers_to_transform", "layers_pattern")) {
            keys.put(k, k);
        }
        keys.put("reg_rules", "target_modules");
        return TargetModules.bind(PetConfigs.bind("lora", raw, keys), "target_modules", "exclude_modules",
                "layers_to_transform", "layers_pattern");
    }

    private static List<String> select(Map<String, Object> raw) {
        return bind(raw).select("lora", llama(List.of("q_proj", "v_proj"))).stream().map(LinearModule::path)
                .toList();
    }

    @Test
    void aListMatchesExactNamesOrDottedSuffixes() {
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"),
                select(Map.of("target_modules", List.of("q_proj"))));
        assertEquals(List.of("model.layers.1.mlp.up_proj"),
                select(Map.of("target_modules", List.of("model.layers.1.mlp.up_proj"))));
        TargetModules t = TargetModules.named(List.of("proj"));
        assertFalse(t.matches("model.layers.0.self_attn.q_proj"), "a suffix must start after a dot");
        assertTrue(TargetModules.named(List.of("self_attn.q_proj")).matches("model.layers.0.self_attn.q_proj"));
    }

    @Test
    void aStringIsARegexOverTheWholeName() {
        assertEquals(List.of("model.layers.1.self_attn.k_proj", "model.layers.1.self_attn.v_proj"),
                select(Map.of("reg_rules", ".*\\.1\\.self_attn\\.(k|v)_proj")));
        PetConfigException e = assertThrows(PetConfigException.class, () -> select(Map.of("target_modules",
                "q_proj")));
        assertEquals("target_modules", e.key());
        assertTrue(e.getMessage().contains("model.layers.0.mlp.down_proj"), "lists candidates: " + e.getMessage());
    }

    @Test
    void allLinearIsEveryLinearButTheOutputHead() {
        List<String> all = select(Map.of("target_modules", "all-linear"));
        assertEquals(14, all.size());
        assertFalse(all.contains("lm_head"));
        assertEquals("all-linear", bind(Map.of("target_modules", "ALL-LINEAR")).targetModulesValue());
    }

    @Test
    void noTargetMeansTheFamilyDefaultAndNoDefaultIsAnError() {
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"), select(Map.of()));
        PetConfigException e = assertThrows(PetConfigException.class,
                () -> bind(Map.of()).select("lora", llama(List.of())));
        assertTrue(e.getMessage().contains("is required"), e.getMessage());
    }

    @Test
    void exclusionsWinAndFollowTheSameTwoForms() {
        assertEquals(List.of("model.layers.1.self_attn.q_proj"), select(Map.of("target_modules",
                List.of("q_proj"), "exclude_modules", List.of("model.layers.0.self_attn.q_proj"))));
        assertEquals(List.of("model.layers.0.self_attn.o_proj", "model.layers.1.self_attn.o_proj"),
                select(Map.of("target_modules", "all-linear", "exclude_modules", ".*(mlp|q_proj|k_proj|v_proj).*")));
    }

    @Test
    void layersToTransformReadsTheBlockIndexFromTheName() {
        assertEquals(List.of("model.layers.1.mlp.down_proj"), select(Map.of("target_modules",
                List.of("down_proj"), "layers_to_transform", 1)));
        assertEquals(List.of("model.layers.0.mlp.down_proj"), select(Map.of("target_modules",
                List.of("down_proj"), "layers_to_transform", List.of(0), "layers_pattern", "layers")));
        PetConfigException none = assertThrows(PetConfigException.class, () -> select(Map.of("target_modules",
                List.of("down_proj"), "layers_to_transform", List.of(0), "layers_pattern", "h")));
        assertTrue(none.getMessage().contains("layers_to_transform [0]"), none.getMessage());
        TargetModules t = bind(Map.of("target_modules", List.of("c_attn"), "layers_to_transform", 3));
        assertTrue(t.matches("transformer.h.3.attn.c_attn"));
        assertFalse(t.matches("transformer.h.13.attn.c_attn"));
        assertFalse(t.matches("c_attn"), "a name without a block index is not in any layer");
    }

    @Test
    void rejectsLayerFiltersThatPeftRejects() {
        PetConfigException e = assertThrows(PetConfigException.class, () -> bind(Map.of("target_modules",
                ".*q_proj", "layers_to_transform", 1)));
        assertEquals("layers_to_transform", e.key());
        assertEquals("layers_pattern", assertThrows(PetConfigException.class, () -> bind(Map.of(
                "target_modules", List.of("q_proj"), "layers_pattern", "layers"))).key());
        assertEquals("target_modules", assertThrows(PetConfigException.class, () -> bind(Map.of(
                "target_modules", "([unclosed"))).key());
        assertEquals("target_modules", assertThrows(PetConfigException.class, () -> bind(Map.of(
                "reg_rules", 3))).key().replace("reg_rules", "target_modules"));
    }
}
