package dev.pet.gpt2;

import dev.pet.onnx.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Small seeded GPT-2s for tests. */
final class TestModels {
    private TestModels() {
    }

    /** 2 blocks, width 64, 4 heads, 128 positions, the full 50257-token vocabulary. */
    static Gpt2Config tiny() {
        return Gpt2Config.preset("gpt2-tiny");
    }

    /**
     * Weights where every parameter matters: non-zero biases, LayerNorm scales away from 1 and shifts away from 0,
     * and projections large enough that attention is far from uniform.
     */
    static Gpt2Weights nonTrivial(Gpt2Config c, long seed) {
        Random r = new Random(seed);
        Map<String, Tensor> m = new LinkedHashMap<>();
        Gpt2Weights.expectedShapes(c).forEach((name, shape) -> {
            int n = Math.toIntExact(Tensor.checkedElementCount(shape));
            float[] v = new float[n];
            boolean lnScale = name.matches(".*ln_(1|2|f)\\.weight");
            double std = lnScale ? 0.2 : name.endsWith(".bias") ? 0.1 : name.contains("wpe") ? 0.1
                    : name.contains("c_attn") ? 0.15 : 0.08;
            for (int i = 0; i < n; i++) {
                v[i] = (float) ((lnScale ? 1.0 : 0.0) + std * r.nextGaussian());
            }
            m.put(name, Tensor.ofFloats(v, shape));
        });
        return Gpt2Weights.of(c, m, "test weights");
    }
}
