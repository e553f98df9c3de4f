package dev.pet.lora;

import dev.pet.api.LinearModule;
import dev.pet.api.PetAdapter;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
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

    @Override
    protected List<String> names() {
        return List.of("lora", "LoRA", "gpt2withlora");
    }
}
