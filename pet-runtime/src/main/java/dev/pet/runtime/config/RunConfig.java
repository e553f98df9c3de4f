package dev.pet.runtime.config;

import dev.pet.engine.Device;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * A whole run, in the MindFormers layout. Built by {@link RunConfigLoader}; {@code trainDataset} and
 * {@code evalDataset} are null when the YAML has none. {@code overwriteOutputDir} (Hugging Face's
 * {@code overwrite_output_dir}, the CLI's {@code --overwrite}) lets a fresh run delete another run's files from
 * {@code outputDir} first.
 */
public record RunConfig(long seed, RunMode runMode, Path outputDir, boolean resumeTraining,
                        boolean overwriteOutputDir, ModelSection model,
                        RunnerConfig runner, OptimizerConfig optimizer, LrScheduleConfig lrSchedule,
                        DataLoaderConfig trainDataset, DataLoaderConfig evalDataset, CallbacksConfig callbacks,
                        Device device) {
    public RunConfig {
        Objects.requireNonNull(runMode, "runMode");
        Objects.requireNonNull(outputDir, "outputDir");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(runner, "runner");
        Objects.requireNonNull(optimizer, "optimizer");
        Objects.requireNonNull(lrSchedule, "lrSchedule");
        Objects.requireNonNull(callbacks, "callbacks");
        Objects.requireNonNull(device, "device");
    }

    public Optional<DataLoaderConfig> train() {
        return Optional.ofNullable(trainDataset);
    }

    public Optional<DataLoaderConfig> eval() {
        return Optional.ofNullable(evalDataset);
    }

    /** The resolved config in canonical layout (map-form callbacks, {@code pet_config} inside model_config). */
    public String toYaml() {
        return RunConfigLoader.toYaml(this);
    }

    /**
     * The canonical resolved config without {@code output_dir}, {@code resume_training} and
     * {@code overwrite_output_dir}: what decides the run's numbers, and what {@link #hash()} hashes.
     */
    public java.util.Map<String, Object> identity() {
        return RunConfigLoader.identity(this);
    }

    /** SHA-256 of the canonical resolved config, to tell whether a checkpoint was written by the same setup. */
    public String hash() {
        return RunConfigLoader.hash(this);
    }
}
