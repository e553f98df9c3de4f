package dev.pet.runtime.config;

import java.util.Map;
import java.util.Objects;

/**
 * {@code model.model_config}: which model to load and how. {@code seqLength} 0 means the model's own context
 * length; {@code overrides} carries the architecture keys that replace the checkpoint's ({@code num_layers}, ...).
 */
public record ModelConfig(String type, String checkpointNameOrPath, int seqLength, Map<String, Object> overrides) {
    public ModelConfig {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(checkpointNameOrPath, "checkpointNameOrPath");
        if (seqLength < 0) {
            throw new ConfigException("model.model_config.seq_length", "must be >= 0 (0 = the model's own), found " + seqLength);
        }
        overrides = overrides == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(overrides));
    }
}
