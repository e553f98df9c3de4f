package dev.pet.runtime.metrics;

/**
 * One optimizer step's results: {@code step} counts completed steps from 1; {@code tokens} is the number of target
 * tokens the step trained on; {@code stepNanos} its wall time; {@code gradNorm} the global gradient norm before
 * clipping (NaN when the engine does not report it).
 */
public record StepMetrics(long step, int epoch, double loss, double learningRate, double gradNorm, long tokens,
                          long stepNanos) {
    public StepMetrics {
        if (step < 1 || epoch < 0 || tokens < 0 || stepNanos < 0) {
            throw new IllegalArgumentException("invalid step metrics: step " + step + ", epoch " + epoch + ", tokens "
                    + tokens + ", nanos " + stepNanos);
        }
    }
}
