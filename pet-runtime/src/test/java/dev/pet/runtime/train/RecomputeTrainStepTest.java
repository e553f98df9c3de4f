package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.llama.LlamaProvider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code runner_config.recompute}: training with every block recomputed in the backward pass follows the same
 * trajectory as training that keeps the activations. The compiled graphs differ (ONNX Runtime may fuse the
 * recomputed ops differently), so values agree to float32 rounding, not bit for bit: 1e-5 relative over three
 * AdamW steps leaves room for a few roundings while any wrong or missing gradient term moves them by far more.
 */
class RecomputeTrainStepTest {
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void recomputedBlocksTrainLikeKeptActivations(String preset) {
        ModelProvider provider = preset.startsWith("gpt2") ? new Gpt2Provider() : new LlamaProvider();
        PretrainedModel base = provider.load(new ModelRequest(preset, Map.of("seq_length", 12), 2));
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 4, "lora_alpha", 8,
                "init_lora_weights", "gaussian")));
        var a = base.anatomy();
        List<String> boundaries = BlockBoundaries.of(pet.model().graph(), a);
        assertEquals(a.layers().size() + 1, boundaries.size());
        Random r = new Random(9);
        int vocab = (int) pet.model().graph().initializers().values().stream()
                .mapToLong(t -> t.rank() == 2 ? t.shape()[0] : 0).max().orElseThrow();
        long[] tokens = new long[2 * 13];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(Math.min(vocab, 256));
        }
        float[] mask = new float[2 * 12];
        Arrays.fill(mask, 1);
        Batch batch = new Batch(2, 12, tokens, mask, DataPosition.START);
        List<double[]> runs = new ArrayList<>();
        List<Map<String, Tensor>> weights = new ArrayList<>();
        for (Recompute mode : List.of(Recompute.NONE, Recompute.ACTIVATIONS, Recompute.segments(boundaries))) {
            double[] trace = new double[6];
            try (OrtEngine engine = OrtEngine.cpu(); GraphTrainStep step = new GraphTrainStep(engine, pet.model(),
                    new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits(), mode), pet.trainables(),
                    OptimizerSpec.adamW(), 1, (t, d) -> { })) {
                assertEquals(!mode.boundaries().isEmpty(), step.compiled().model().graph().nodes().stream()
                        .anyMatch(n -> n.name().startsWith("recompute/") && n.opType().equals("MatMul")));
                for (int s = 0; s < 3; s++) {
                    TrainStep.StepResult res = step.step(List.of(batch), 1e-2, s + 1);
                    trace[2 * s] = res.loss();
                    trace[2 * s + 1] = res.gradNorm();
                }
                weights.add(step.trainables());
            }
            runs.add(trace);
        }
        for (int run = 1; run < runs.size(); run++) {
            for (int i = 0; i < runs.get(0).length; i++) {
                double want = runs.get(0)[i];
                assertEquals(want, runs.get(run)[i], 1e-5 * Math.abs(want), "run " + run + ": "
                        + (i % 2 == 0 ? "loss" : "grad norm") + " of step " + (i / 2 + 1));
            }
            Map<String, Tensor> got = weights.get(run);
            weights.get(0).forEach((name, t) -> {
                float[] want = t.toFloatArray();
                float[] have = got.get(name).toFloatArray();
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], have[i], 1e-5 * Math.max(1, Math.abs(want[i])), name + "[" + i + "]");
                }
            });
        }
        assertTrue(runs.get(0)[4] < runs.get(0)[0], "the loss falls");
    }
}
