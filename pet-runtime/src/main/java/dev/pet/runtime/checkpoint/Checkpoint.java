package dev.pet.runtime.checkpoint;

import java.nio.file.Path;
import java.util.Objects;

/** A complete checkpoint on disk: {@code output_dir/checkpoint-N/} and its trainer state. */
public record Checkpoint(Path directory, TrainerState state) {
    public Checkpoint {
        Objects.requireNonNull(directory, "directory");
        Objects.requireNonNull(state, "state");
    }

    public long step() {
        return state.step();
    }
}
