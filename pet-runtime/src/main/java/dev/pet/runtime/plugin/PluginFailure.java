package dev.pet.runtime.plugin;

import java.util.Objects;

/**
 * A jar or folder in {@code plugins/} that could not be loaded: where it is and why, in one line. The other plugins
 * stay usable; {@code pet plugins} lists the failure.
 */
public record PluginFailure(String location, String error) {
    public PluginFailure {
        Objects.requireNonNull(location, "location");
        Objects.requireNonNull(error, "error");
    }
}
