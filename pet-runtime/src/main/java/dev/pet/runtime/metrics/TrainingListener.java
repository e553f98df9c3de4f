package dev.pet.runtime.metrics;

/**
 * Observes a training run (DJL's {@code TrainingListener} style): metrics, logs, progress and checkpoint
 * bookkeeping are listeners, not code in the loop. Every method has an empty default. Calls come from the training
 * thread, in order: begin, then steps interleaved with evaluations and checkpoints, then end.
 */
public interface TrainingListener {
    default void onTrainingBegin(RunInfo run) {
    }

    /** After each optimizer step. */
    default void onStep(StepMetrics step) {
    }

    default void onEvaluation(EvalMetrics eval) {
    }

    default void onCheckpoint(CheckpointEvent checkpoint) {
    }

    default void onTrainingEnd(TrainingSummary summary) {
    }
}
