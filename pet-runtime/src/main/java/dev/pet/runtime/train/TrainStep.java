package dev.pet.runtime.train;

import dev.pet.runtime.data.Batch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One compiled training setup: runs optimizer steps and evaluations and owns the trainable tensors and optimizer
 * state. The {@link TrainingLoop} drives it; implementations hide graphs and sessions.
 */
public interface TrainStep extends AutoCloseable {
    /**
     * One optimizer step over {@code microBatches} (gradients accumulated over all of them).
     *
     * @param learningRate the rate for this step
     * @param step         the 1-based number of this step (bias correction, dropout seeds)
     */
    StepResult step(java.util.List<Batch> microBatches, double learningRate, long step);

    /** Summed token loss and token count of a batch, without updating anything. */
    EvalResult evaluate(Batch batch);

    /** Writes everything needed to resume exactly (trainable tensors, optimizer state) into {@code directory}. */
    void saveState(Path directory) throws IOException;

    /** Restores what {@link #saveState} wrote. */
    void loadState(Path directory);

    /** Writes the trained adapter in its algorithm's file format (PEFT layout) into {@code directory}. */
    void saveAdapter(Path directory) throws IOException;

    @Override
    void close();

    /** Mean loss over the step's tokens and the global gradient norm before clipping. */
    /**
     * @param replicaComputeNanos in a data-parallel step, the time each replica (by rank) spent computing the
     *                            gradients of its shares, without waiting for the exchange; empty in one process
     */
    record StepResult(double loss, double gradNorm, List<Long> replicaComputeNanos) {
        public StepResult {
            replicaComputeNanos = List.copyOf(replicaComputeNanos);
        }

        public StepResult(double loss, double gradNorm) {
            this(loss, gradNorm, List.of());
        }
    }

    /** Summed cross-entropy and the number of tokens it covers. */
    record EvalResult(double lossSum, long tokens) {
    }
}
