package dev.pet.runtime.metrics;

import java.time.Duration;
import java.util.Objects;

/** How a run ended: steps completed, last loss, tokens trained on, wall time, and why it stopped. */
public record TrainingSummary(long steps, double finalLoss, long tokens, Duration elapsed, StopReason reason) {
    /** Why training stopped. */
    public enum StopReason {
        COMPLETED, INTERRUPTED, NON_FINITE_LOSS, FAILED
    }

    public TrainingSummary {
        Objects.requireNonNull(elapsed, "elapsed");
        Objects.requireNonNull(reason, "reason");
    }
}
