package dev.pet.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #13: the README's quickstart ({@code conf/quickstart.yaml}: LoRA on {@code models/keeper-base}, tuned on
 * {@code data/lighthouse.txt}) for 300 steps through the {@link Trainer}, once on the float base and once on a 4-bit
 * base with the default quantization (blocks of 64, symmetric, int8 compute, MatMulNBits). The quantized run must end
 * within 3% of the float run's loss, both as the mean of its last 10 training losses (the same seeded batches in
 * both runs) and as the loss over the whole text with the final adapter; so must a run with kernel matmul_integer
 * (8-bit codes per channel, int8 products). Runs from the sources, not the packaged
 * distribution, so it is an ordinary unit test.
 */
class QuantizedQuickstartTest {
    private static final Path DIST = Path.of("src", "main", "dist");
    private static final int STEPS = 300;

    @TempDir
    Path tmp;

    record Run(List<Double> losses, double evalLoss, double seconds) {
        double lastTenMean() {
            return losses.subList(losses.size() - 10, losses.size()).stream().mapToDouble(Double::doubleValue)
                    .average().orElseThrow();
        }
    }

    private Run finetune(String name, String... extra) {
        List<String> overrides = new ArrayList<>(List.of(
                "output_dir=" + tmp.resolve(name).toAbsolutePath(),
                "runner_config.max_steps=" + STEPS,
                "callbacks.log_steps=0",
                "eval_dataset.data_loader.type=text",
                "eval_dataset.data_loader.dataset_dir=" + DIST.resolve("data/lighthouse.txt").toAbsolutePath()));
        overrides.addAll(List.of(extra));
        List<Double> losses = new ArrayList<>();
        List<EvalMetrics> evals = new ArrayList<>();
        long t0 = System.nanoTime();
        Trainer.fromYaml(DIST.resolve("conf/quickstart.yaml"), overrides.toArray(String[]::new))
                .withListener(new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics step) {
                        losses.add(step.loss());
                    }

                    @Override
                    public void onEvaluation(EvalMetrics eval) {
                        evals.add(eval);
                    }
                }).finetune();
        assertEquals(STEPS, losses.size(), name + ": steps taken");
        assertEquals(1, evals.size(), name + ": one evaluation, at the end");
        return new Run(losses, evals.get(0).loss(), (System.nanoTime() - t0) / 1e9);
    }

    @Test
    void fourBitBaseEndsWithinThreePercentOfTheFloatRun() {
        Run fp32 = finetune("fp32");
        Run q4 = finetune("q4", "model.model_config.quantization.bits=4");
        double trainRel = Math.abs(q4.lastTenMean() - fp32.lastTenMean()) / fp32.lastTenMean();
        double evalRel = Math.abs(q4.evalLoss() - fp32.evalLoss()) / fp32.evalLoss();
        System.out.printf(Locale.ROOT, "quickstart %d steps: float loss %.4f -> %.4f (last 10 mean), eval %.4f, %.1f s;"
                + " 4-bit loss %.4f -> %.4f, eval %.4f, %.1f s; difference %.2f%% (train), %.2f%% (eval)%n", STEPS,
                fp32.losses().get(0), fp32.lastTenMean(), fp32.evalLoss(), fp32.seconds(), q4.losses().get(0),
                q4.lastTenMean(), q4.evalLoss(), q4.seconds(), 100 * trainRel, 100 * evalRel);
        // the run must actually learn, or "equal losses" would say nothing
        assertTrue(fp32.lastTenMean() < 0.5 * fp32.losses().get(0), "float run learns: " + fp32.losses().get(0)
                + " -> " + fp32.lastTenMean());
        assertTrue(trainRel <= 0.03, "mean of the last 10 training losses: 4-bit " + q4.lastTenMean() + " vs float "
                + fp32.lastTenMean());
        assertTrue(evalRel <= 0.03, "loss over data/lighthouse.txt with the final adapter: 4-bit " + q4.evalLoss()
                + " vs float " + fp32.evalLoss());
        // kernel matmul_integer: 8-bit codes per channel, every product (activations and gradients too) in int8
        Run int8 = finetune("int8", "model.model_config.quantization.kernel=matmul_integer");
        double int8TrainRel = Math.abs(int8.lastTenMean() - fp32.lastTenMean()) / fp32.lastTenMean();
        double int8EvalRel = Math.abs(int8.evalLoss() - fp32.evalLoss()) / fp32.evalLoss();
        System.out.printf(Locale.ROOT, "quickstart, kernel matmul_integer: loss %.4f (last 10 mean), eval %.4f, %.1f s;"
                + " difference %.2f%% (train), %.2f%% (eval)%n", int8.lastTenMean(), int8.evalLoss(), int8.seconds(),
                100 * int8TrainRel, 100 * int8EvalRel);
        assertTrue(int8TrainRel <= 0.03 && int8EvalRel <= 0.03, "kernel matmul_integer: last 10 training losses "
                + int8.lastTenMean() + ", eval " + int8.evalLoss() + " vs float " + fp32.lastTenMean() + ", "
                + fp32.evalLoss());
    }
}
