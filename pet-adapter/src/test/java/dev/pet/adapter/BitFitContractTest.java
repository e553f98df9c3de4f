package dev.pet.adapter;

import dev.pet.api.PetAdapter;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
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
}
