package dev.pet.runtime;

import dev.pet.runtime.config.RunConfig;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Evaluation of a model on the config's {@code eval_dataset}: the run config and an adapter directory ({@code adapter}
 * null: the run's {@code output_dir/adapter} when it exists and the config names a PET method, else the base model).
 */
public record EvalRequest(RunConfig config, Path adapter) {
    public EvalRequest {
        Objects.requireNonNull(config, "config");
    }
}
