package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelAnatomy;
import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Full fine-tuning of gpt2-tiny through the compiled train step and the ONNX Runtime engine. */
class FullFineTuneTest {
    @TempDir
    Path dir;

    @Test
    void fullFineTuneOnARepeatedBatchDrivesTheLossBelowTenPercent() throws Exception {
        PretrainedModel m = new Gpt2Provider().load(new ModelRequest("gpt2-tiny", Map.of(), 1));
        ModelAnatomy a = m.anatomy();
        List<String> params = new ArrayList<>();
        for (var e : m.model().graph().initializers().entrySet()) {
            if (e.getKey().startsWith("transformer.")) {
                params.add(e.getKey());
            }
        }
        Map<String, Tensor> before = Map.copyOf(m.model().graph().initializers());
        Random r = new Random(4);
        int batch = 2;
        int seq = 16;
        long[] tokens = new long[batch * (seq + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(50257);
        }
        float[] mask = new float[batch * seq];
        Arrays.fill(mask, 1f);
        Batch b = new Batch(batch, seq, tokens, mask, DataPosition.START);

        OptimizerSpec spec = OptimizerSpec.adamW().withWeightDecay(0, null);
        try (OrtEngine engine = OrtEngine.cpu();
                GraphTrainStep step = new GraphTrainStep(engine, m.model(),
                        new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits()), params, spec, 1,
                        (t, d) -> { })) {
            double first = Double.NaN;
            double last = Double.NaN;
            int steps = 0;
            for (int s = 1; s <= 150 && !(last < 0.1 * first); s++) {
                TrainStep.StepResult res = step.step(List.of(b), 1e-2, s);
                if (s == 1) {
                    first = res.loss();
                    assertEquals(Math.log(50257), first, 1.0, "an untrained model is near uniform");
                }
                last = res.loss();
                steps = s;
                assertTrue(Double.isFinite(res.gradNorm()) && res.gradNorm() > 0);
            }
            assertTrue(last < 0.1 * first, "loss " + first + " -> " + last + " after " + steps + " steps");
            // Evaluation of the same batch sees the trained weights.
            TrainStep.EvalResult eval = step.evaluate(b);
            assertEquals(batch * seq, eval.tokens());
            assertTrue(eval.lossSum() / eval.tokens() < 0.2 * first);
            // The base model's weights were never touched.
            before.forEach((k, v) -> assertEquals(v.buffer(), m.model().graph().initializer(k).buffer(), k));
        }
    }
}
