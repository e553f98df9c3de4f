package dev.pet.runtime;

import dev.pet.engine.GenerationConfig;
import dev.pet.runtime.config.RunConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Text generation with the config's model and an adapter directory ({@code adapter} null: the run's
 * {@code output_dir/adapter} when it exists and the config names a PET method, else the base model). Sampling
 * follows {@link GenerationConfig}: greedy when {@code temperature} is 0, {@code topK} 0 means no top-k filter,
 * {@code topP} 1 no nucleus filter, {@code repetitionPenalty} 1 none.
 *
 * @param prompts one or more prompts, generated as one batch
 * @param stop    strings that end a completion (not included in it)
 */
public record GenerateRequest(RunConfig config, Path adapter, List<String> prompts, int maxNewTokens,
        double temperature, int topK, double topP, double repetitionPenalty, long seed, List<String> stop) {
    public GenerateRequest {
        Objects.requireNonNull(config, "config");
        prompts = List.copyOf(prompts);
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompt: give --prompt TEXT or --prompts FILE");
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("--max-new-tokens: expected >= 1, found " + maxNewTokens);
        }
        if (!(temperature >= 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("--temperature: expected 0 (greedy) or more, found " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("--top-k: expected >= 0, found " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("--top-p: expected a number in (0, 1], found " + topP);
        }
        if (!(repetitionPenalty > 0) || !Double.isFinite(repetitionPenalty)) {
            throw new IllegalArgumentException("--repetition-penalty: expected a positive number, found "
                    + repetitionPenalty);
        }
    }

    /** One prompt, no stop strings, no nucleus filter, no repetition penalty. */
    public static GenerateRequest of(RunConfig config, Path adapter, String prompt, int maxNewTokens,
            double temperature, int topK, long seed) {
        return new GenerateRequest(config, adapter, List.of(prompt), maxNewTokens, temperature, topK, 1, 1, seed,
                List.of());
    }

    /** The sampling settings (the end-of-text id is the tokenizer's, set by the generator). */
    public GenerationConfig generation() {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, -1);
    }
}
