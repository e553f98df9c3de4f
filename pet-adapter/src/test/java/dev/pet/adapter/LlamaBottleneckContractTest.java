package dev.pet.adapter;

import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import dev.pet.llama.LlamaProvider;
import dev.pet.onnx.ir.Model;
import java.util.Map;

/** The bottleneck contract on llama-tiny, whose adapters sit under model.layers.N.self_attn / .mlp. */
class LlamaBottleneckContractTest extends BottleneckContractTest {
    private static final PretrainedModel LLAMA = new LlamaProvider().load(new ModelRequest("llama-tiny", Map.of(), 3));
    private static final long[] IDS = {256, 72, 101, 108, 108, 111, 44, 32, 119, 257};

    @Override
    protected PretrainedModel base() {
        return LLAMA;
    }

    @Override
    protected float[] logits(Model model) {
        return TinyGpt2.logits(model, IDS);
    }
}
