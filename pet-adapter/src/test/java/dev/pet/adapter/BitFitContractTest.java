package dev.pet.adapter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.api.PetAdapter;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

class BitFitContractTest extends PetAdapterContract {
    @Override
    protected PetAdapter<?> adapter() {
        return new BitFitAdapter();
    }

    @Override
    protected PretrainedModel base() {
        return TinyGpt2.BASE;
    }

    @Override
    protected float[] logits(Model model) {
        return TinyGpt2.logits(model);
    }

    @Override
    protected Map<String, Object> config() {
        return Map.of();
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        // per block: ln_1, ln_2 (h each), c_attn (3h), attn.c_proj (h), c_fc (4h), mlp.c_proj (h); plus ln_f (h)
        long h = base.anatomy().hiddenSize();
        return base.anatomy().layers().size() * (h + h + 3 * h + h + 4 * h + h) + h;
    }

    @Override
    protected List<String> names() {
        return List.of("bitfit");
    }

    /**
     * PEFT has no such type; PET Runtime's documented layout: {@code adapter_config.json} with peft_type BITFIT and
     * its options, and every trained tensor in {@code adapter_model.safetensors} under its state-dict name.
     */
    @Override
    protected void writeAsPeft(PetModel model, Map<String, Tensor> values, Path dir) {
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "BITFIT");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("bias_pattern", ".*\\.bias");
        Map<String, Tensor> w = new LinkedHashMap<>();
        values.forEach((k, t) -> w.put(k, PeftFiles.float32(t)));
        PeftFiles.write(dir, cfg, w);
    }

    @Override
    protected Map<String, Tensor> readAsPeft(PetModel model, Path dir) {
        assertEquals("BITFIT", PeftFiles.config(dir).get("peft_type"));
        return PeftFiles.tensors(dir);
    }
}
