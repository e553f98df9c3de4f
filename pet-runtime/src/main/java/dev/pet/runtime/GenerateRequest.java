package dev.pet.runtime;

import dev.pet.runtime.config.RunConfig;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Text generation with the config's model and an adapter directory ({@code adapter} null: the run's
 * {@code output_dir/adapter} when it exists, else the base model). Sampling is greedy when {@code temperature} is
 * 0; {@code topK} 0 means no top-k filter.
 */
public record GenerateRequest(RunConfig config, Path adapter, String prompt, int maxNewTokens, double temperature,
                              int topK, long seed) {
    public GenerateRequest {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(prompt, "prompt");
        if (maxNewTokens < 1 || !(temperature >= 0) || topK < 0) {
            throw new IllegalArgumentException("invalid sampling: max new tokens " + maxNewTokens + ", temperature "
                    + temperature + ", top-k " + topK);
        }
    }
}
