package dev.pet.runtime.metrics;

import java.util.List;

/**
 * One optimizer step's results: {@code step} counts completed steps from 1; {@code tokens} is the number of target
 * tokens the step trained on; {@code stepNanos} its wall time; {@code gradNorm} the global gradient norm before
 * clipping (NaN when the engine does not report it). In a data-parallel run, {@code replicaComputeNanos} holds, by
 * rank, the time each replica spent computing its gradients in this step (the exchange makes every replica's wall time
 * the slowest one's, so this is what tells them apart); it is empty in one process.
 */
public record StepMetrics(long step, int epoch, double loss, double learningRate, double gradNorm, long tokens,
                          long stepNanos, List<Long> replicaComputeNanos) {
    public StepMetrics(long step, int epoch, double loss, double learningRate, double gradNorm, long tokens,
            long stepNanos) {
        this(step, epoch, loss, learningRate, gradNorm, tokens, stepNanos, List.of());
    }

    public StepMetrics {
        replicaComputeNanos = List.copyOf(replicaComputeNanos);
        if (step < 1 || epoch < 0 || tokens < 0 || stepNanos < 0) {
            throw new IllegalArgumentException("invalid step metrics: step " + step + ", epoch " + epoch + ", tokens "
                    + tokens + ", nanos " + stepNanos);
        }
    }
}
