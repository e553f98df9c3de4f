package dev.pet.runtime.config;

import dev.pet.engine.Device;
import java.net.URI;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * A whole run, in the MindFormers layout. Built by {@link RunConfigLoader}; {@code trainDataset} and
 * {@code evalDataset} are null when the YAML has none. {@code overwriteOutputDir} (Hugging Face's
 * {@code overwrite_output_dir}, the CLI's {@code --overwrite}) lets a fresh run delete another run's files from
 * {@code outputDir} first.
 *
 * <p>{@code output_dir} is a local path, or a Hadoop {@code FileSystem} URI ({@code hdfs://}, {@code s3a://},
 * {@code abfs://}, {@code file:/...}: anything with a scheme) that a Spark run (pet-spark) publishes the run directory
 * to. Then {@code outputUri} holds it and {@code outputDir} is a local staging directory derived from it; a single
 * process refuses such a config ({@link #requireLocalOutput()}), as it would never publish what it writes.
 */
public record RunConfig(long seed, RunMode runMode, Path outputDir, URI outputUri, boolean resumeTraining,
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

    /** The Hadoop FileSystem URI the run directory is published to, when {@code output_dir} is one. */
    public Optional<URI> publishedTo() {
        return Optional.ofNullable(outputUri);
    }

    /**
     * Refuses a config whose {@code output_dir} is a URI: only pet-spark publishes a run there, and a single process
     * writing to the staging directory would lose the run.
     */
    public void requireLocalOutput() {
        if (outputUri != null) {
            throw new ConfigException("output_dir", outputUri + " is a Hadoop FileSystem URI: only a Spark run "
                    + "(spark-submit with pet-spark, or pet finetune RUN.yaml --spark MASTER) publishes a run there; "
                    + "a single process needs a local path (--set output_dir=DIR)");
        }
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
