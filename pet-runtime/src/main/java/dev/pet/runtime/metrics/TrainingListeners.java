package dev.pet.runtime.metrics;

import java.util.List;
import java.util.Objects;

/** Several listeners behind one: each event goes to every listener in order. */
public final class TrainingListeners implements TrainingListener {
    private final List<TrainingListener> listeners;

    public TrainingListeners(List<? extends TrainingListener> listeners) {
        this.listeners = List.copyOf(Objects.requireNonNull(listeners, "listeners"));
    }

    public static TrainingListener of(TrainingListener... listeners) {
        return new TrainingListeners(List.of(listeners));
    }

    public List<TrainingListener> listeners() {
        return listeners;
    }

    @Override
    public void onTrainingBegin(RunInfo run) {
        listeners.forEach(l -> l.onTrainingBegin(run));
    }

    @Override
    public void onStep(StepMetrics step) {
        listeners.forEach(l -> l.onStep(step));
    }

    @Override
    public void onEvaluation(EvalMetrics eval) {
        listeners.forEach(l -> l.onEvaluation(eval));
    }

    @Override
    public void onCheckpoint(CheckpointEvent checkpoint) {
        listeners.forEach(l -> l.onCheckpoint(checkpoint));
    }

    @Override
    public void onTrainingEnd(TrainingSummary summary) {
        listeners.forEach(l -> l.onTrainingEnd(summary));
    }
}
