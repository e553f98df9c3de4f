package dev.pet.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LinearModule;
import dev.pet.api.PetAdapter;
import dev.pet.api.PretrainedModel;
import dev.pet.api.PetModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

class LoraContractTest extends PetAdapterContract {
    @BeforeAll
    static void setUp() {
        LoraAdapterTest.setUp();
    }

    @AfterAll
    static void tearDown() {
        LoraAdapterTest.tearDown();
    }

    @Override
    protected PetAdapter<?> adapter() {
        return new LoraAdapter();
    }

    @Override
    protected PretrainedModel base() {
        return LoraAdapterTest.base;
    }

    @Override
    protected float[] logits(Model model) {
        return LoraAdapterTest.logits(model);
    }

    @Override
    protected Map<String, Object> config() {
        return Map.of("r", 4, "lora_alpha", 8, "target_modules", List.of("c_attn", "mlp.c_proj"), "lora_dropout", 0.1);
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        long n = 0;
        for (LinearModule m : base.anatomy().linears()) {
            if (m.path().endsWith("c_attn") || m.path().endsWith("mlp.c_proj")) {
                n += 4 * (m.inFeatures() + m.outFeatures());
            }
        }
        return n;
    }

    /**
     * PEFT's LoRA layout: {@code base_model.model.<module>.lora_A.weight} [r, in] and {@code .lora_B.weight} [out, r];
     * target_modules as full module names, fan_in_fan_out true for GPT-2's Conv1D weights.
     */
    @Override
    protected void writeAsPeft(PetModel model, Map<String, Tensor> values, Path dir) {
        Map<String, Tensor> w = new LinkedHashMap<>();
        List<String> modules = new ArrayList<>();
        values.forEach((name, t) -> {
            if (name.endsWith(".lora_A")) {
                String module = name.substring(0, name.length() - ".lora_A".length());
                modules.add(module);
                w.put("base_model.model." + module + ".lora_A.weight", PeftFiles.transposed(t));
                w.put("base_model.model." + module + ".lora_B.weight",
                        PeftFiles.transposed(values.get(module + ".lora_B")));
            }
        });
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "LORA");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", "gpt2-tiny");
        cfg.put("r", 4);
        cfg.put("lora_alpha", 8);
        cfg.put("lora_dropout", 0.1);
        cfg.put("target_modules", modules);
        cfg.put("fan_in_fan_out", true);
        cfg.put("bias", "none");
        cfg.put("use_rslora", false);
        cfg.put("use_dora", false);
        cfg.put("rank_pattern", Map.of());
        cfg.put("alpha_pattern", Map.of());
        cfg.put("modules_to_save", null);
        cfg.put("init_lora_weights", true);
        cfg.put("layers_to_transform", null);
        cfg.put("inference_mode", true);
        PeftFiles.write(dir, cfg, w);
    }

    @Override
    protected Map<String, Tensor> readAsPeft(PetModel model, Path dir) {
        Map<String, Object> cfg = PeftFiles.config(dir);
        assertEquals("LORA", cfg.get("peft_type"));
        assertEquals(4, cfg.get("r"));
        assertEquals(8.0, ((Number) cfg.get("lora_alpha")).doubleValue());
        Map<String, Tensor> out = new LinkedHashMap<>();
        PeftFiles.tensors(dir).forEach((key, t) -> {
            assertTrue(key.startsWith("base_model.model.") && key.endsWith(".weight"), key);
            String inner = key.substring("base_model.model.".length(), key.length() - ".weight".length());
            long[] s = t.shape();
            if (inner.endsWith(".lora_A")) {
                assertEquals(4, s[0], key + " is [r, in]");
            } else {
                assertEquals(4, s[1], key + " is [out, r]");
            }
            out.put(inner, PeftFiles.transposed(t));
        });
        return out;
    }

    @Override
    protected List<String> names() {
        return List.of("lora", "LoRA", "gpt2withlora");
    }
}
