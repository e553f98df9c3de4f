package dev.pet.runtime.metrics;

import java.nio.file.Path;
import java.util.Objects;

/** A complete checkpoint now exists at {@code directory}, written after {@code step} optimizer steps. */
public record CheckpointEvent(long step, Path directory) {
    public CheckpointEvent {
        Objects.requireNonNull(directory, "directory");
    }
}
