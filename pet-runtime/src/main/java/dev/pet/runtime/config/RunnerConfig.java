package dev.pet.runtime.config;

/**
 * {@code runner_config}: how long and in what batches to train. {@code maxSteps} &gt; 0 overrides {@code epochs};
 * -1 means "run all epochs". {@code recompute} (MindFormers' name) recomputes each transformer block's forward pass
 * in the backward pass instead of keeping its activations (gradient checkpointing): less memory, more time, the
 * same gradients.
 */
public record RunnerConfig(int epochs, int batchSize, long maxSteps, int gradientAccumulationSteps,
        boolean recompute) {
    public RunnerConfig {
        if (epochs < 1) {
            throw new ConfigException("runner_config.epochs", "must be >= 1, found " + epochs);
        }
        if (batchSize < 1) {
            throw new ConfigException("runner_config.batch_size", "must be >= 1, found " + batchSize);
        }
        if (maxSteps == 0 || maxSteps < -1) {
            throw new ConfigException("runner_config.max_steps", "must be -1 (all epochs) or > 0, found " + maxSteps);
        }
        if (gradientAccumulationSteps < 1) {
            throw new ConfigException("runner_config.gradient_accumulation_steps", "must be >= 1, found " + gradientAccumulationSteps);
        }
    }

    public static RunnerConfig defaults() {
        return new RunnerConfig(1, 8, -1, 1, false);
    }
}
