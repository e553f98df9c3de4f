package dev.pet.adapter;

import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.Map;

/** A seeded gpt2-tiny and its logits on a fixed input, through ONNX Runtime. */
final class TinyGpt2 {
    static final long[] IDS = {464, 3290, 286, 262, 1578, 11, 290, 50256, 17, 9};
    static final long SEED = 3;
    static final PretrainedModel BASE = new Gpt2Provider().load(new ModelRequest("gpt2-tiny", Map.of(), SEED));
    private static final OrtEngine ENGINE = OrtEngine.cpu();

    private TinyGpt2() {
    }

    static float[] logits(Model m) {
        return logits(m, IDS);
    }

    /** Logits of any family's training-form model on these ids, flattened. */
    static float[] logits(Model m, long[] ids) {
        try (CompiledGraph g = ENGINE.compile(m)) {
            long[] mask = new long[ids.length];
            Arrays.fill(mask, 1);
            return g.run(Map.of("input_ids", Tensor.ofLongs(ids, 1, ids.length),
                    "attention_mask", Tensor.ofLongs(mask, 1, ids.length))).get("logits").toFloatArray();
        }
    }
}
