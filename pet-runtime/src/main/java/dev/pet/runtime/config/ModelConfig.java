package dev.pet.runtime.config;

import dev.pet.api.Quantization;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * {@code model.model_config}: which model to load and how. {@code seqLength} 0 means the model's own context
 * length; {@code overrides} carries the architecture keys that replace the checkpoint's ({@code num_layers}, ...);
 * {@code quantization} (null for none) quantizes the frozen linear weights ({@code model_config.quantization}).
 */
public record ModelConfig(String type, String checkpointNameOrPath, int seqLength, Map<String, Object> overrides,
        Quantization quantization) {
    public ModelConfig {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(checkpointNameOrPath, "checkpointNameOrPath");
        if (seqLength < 0) {
            throw new ConfigException("model.model_config.seq_length", "must be >= 0 (0 = the model's own), found " + seqLength);
        }
        overrides = overrides == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(overrides));
    }

    /** A model without quantization. */
    public ModelConfig(String type, String checkpointNameOrPath, int seqLength, Map<String, Object> overrides) {
        this(type, checkpointNameOrPath, seqLength, overrides, null);
    }

    public Optional<Quantization> quantizationSpec() {
        return Optional.ofNullable(quantization);
    }
}
