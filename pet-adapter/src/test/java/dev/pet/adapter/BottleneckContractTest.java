package dev.pet.adapter;

import dev.pet.api.PetAdapter;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
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
}
