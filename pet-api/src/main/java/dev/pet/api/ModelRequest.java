package dev.pet.api;

import java.util.Map;
import java.util.Objects;

/**
 * What to load: {@code nameOrPath} is a preset name ({@code gpt2-tiny}) or a model directory / ONNX file;
 * {@code overrides} are config keys that replace the checkpoint's ({@code seq_length}, ...); {@code seed} drives
 * random initialisation when no weights are given.
 */
public record ModelRequest(String nameOrPath, Map<String, Object> overrides, long seed) {
    public ModelRequest {
        Objects.requireNonNull(nameOrPath, "nameOrPath");
        overrides = overrides == null ? Map.of() : Map.copyOf(overrides);
    }

    public static ModelRequest of(String nameOrPath) {
        return new ModelRequest(nameOrPath, Map.of(), 0);
    }
}
