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

class BottleneckContractTest extends PetAdapterContract {
    @Override
    protected PetAdapter<?> adapter() {
        return new BottleneckAdapter();
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
        return Map.of("bottleneck_size", 8, "non_linearity", "relu");
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        long h = base.anatomy().hiddenSize();
        // two adapters per block: down [h, 8] + 8, up [8, h] + h
        return base.anatomy().layers().size() * 2L * (h * 8 + 8 + 8 * h + h);
    }

    @Override
    protected List<String> names() {
        return List.of("adapter", "houlsby");
    }

    /**
     * PEFT has no such type; PET Runtime's documented layout: {@code adapter_config.json} with peft_type BOTTLENECK_ADAPTER and
     * its options, and every trained tensor in {@code adapter_model.safetensors} under its state-dict name.
     */
    @Override
    protected void writeAsPeft(PetModel model, Map<String, Tensor> values, Path dir) {
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "BOTTLENECK_ADAPTER");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("bottleneck_size", 8);
        cfg.put("non_linearity", "relu");
        Map<String, Tensor> w = new LinkedHashMap<>();
        values.forEach((k, t) -> w.put(k, PeftFiles.float32(t)));
        PeftFiles.write(dir, cfg, w);
    }

    @Override
    protected Map<String, Tensor> readAsPeft(PetModel model, Path dir) {
        assertEquals("BOTTLENECK_ADAPTER", PeftFiles.config(dir).get("peft_type"));
        return PeftFiles.tensors(dir);
    }
}
