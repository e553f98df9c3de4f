package dev.pet.runtime.config;

/**
 * {@code runner_config}: how long and in what batches to train. {@code maxSteps} &gt; 0 overrides {@code epochs};
 * -1 means "run all epochs". {@code recompute} (MindFormers' name) recomputes each transformer block's forward pass
 * in the backward pass instead of keeping its activations (gradient checkpointing): less memory, more time, the
 * same gradients. {@code batchSize} is per replica: a data-parallel run ({@code data_parallel} replicas, on Spark)
 * steps on {@link #globalBatchSize()} rows, as one process with that batch size would. {@code prepackWeights} lets
 * ONNX Runtime pre-pack the frozen weights for its matrix kernels when the train step's session is created: a second,
 * anonymous copy of them and longer set-up, for faster steps where weights are large against the batch (measured in
 * docs/BENCHMARKS.md: Llama-3.2-1B 1.6x faster, GPT-2 small no faster), the same results.
 */
public record RunnerConfig(int epochs, int batchSize, long maxSteps, int gradientAccumulationSteps,
        boolean recompute, int dataParallel, boolean prepackWeights) {
    public RunnerConfig(int epochs, int batchSize, long maxSteps, int gradientAccumulationSteps, boolean recompute) {
        this(epochs, batchSize, maxSteps, gradientAccumulationSteps, recompute, 1, false);
    }

    public RunnerConfig {
        if (dataParallel < 1) {
            throw new ConfigException("runner_config.data_parallel", "must be >= 1, found " + dataParallel);
        }
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

    /** Rows per optimizer micro-batch over all replicas. */
    public int globalBatchSize() {
        return Math.multiplyExact(batchSize, dataParallel);
    }

    public static RunnerConfig defaults() {
        return new RunnerConfig(1, 8, -1, 1, false);
    }
}
