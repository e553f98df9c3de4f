package dev.pet.runtime.config;

import dev.pet.api.PetException;

/** A run configuration is invalid; the message names the full key path, the value found and what is valid. */
public class ConfigException extends PetException {
    private final String keyPath;

    public ConfigException(String keyPath, String message) {
        super(keyPath == null || keyPath.isEmpty() ? message : keyPath + ": " + message);
        this.keyPath = keyPath == null ? "" : keyPath;
    }

    public ConfigException(String keyPath, String message, Throwable cause) {
        super(keyPath == null || keyPath.isEmpty() ? message : keyPath + ": " + message, cause);
        this.keyPath = keyPath == null ? "" : keyPath;
    }

    /** The dotted key path the error is about ({@code runner_config.batch_size}); empty for the whole file. */
    public String keyPath() {
        return keyPath;
    }
}
