package dev.pet.runtime.metrics;

import java.util.Objects;

/**
 * What a training run is, told to listeners at its start: the model and PET method (bounded tag values), the total
 * optimizer steps, the step it starts from (non-zero when resuming), and tokens per optimizer step.
 */
public record RunInfo(String model, String pet, long totalSteps, long startStep, long tokensPerStep) {
    public RunInfo {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pet, "pet");
        if (totalSteps < 1 || startStep < 0 || startStep > totalSteps || tokensPerStep < 0) {
            throw new IllegalArgumentException("invalid run info: total " + totalSteps + ", start " + startStep
                    + ", tokens/step " + tokensPerStep);
        }
    }
}
