package dev.pet.prefix;

import dev.pet.api.PetAdapter;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
import java.util.List;
import java.util.Map;

class PrefixContractTest extends PetAdapterContract {
    @Override
    protected PetAdapter<?> adapter() {
        return new PrefixTuningAdapter();
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
    protected boolean startsAsTheBaseModel() {
        return false;
    }

    @Override
    protected Map<String, Object> config() {
        return Map.of("num_virtual_tokens", 5, "prefix_projection", true, "encoder_hidden_size", 16);
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        long h = base.anatomy().hiddenSize();
        long width = base.anatomy().layers().size() * 2L * h;
        return 5 * h + (h * 16 + 16) + (16 * width + width);
    }

    @Override
    protected List<String> names() {
        return List.of("prefix_tuning", "prefixtuning");
    }
}
