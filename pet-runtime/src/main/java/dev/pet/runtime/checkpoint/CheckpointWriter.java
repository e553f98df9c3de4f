package dev.pet.runtime.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Writes part of a checkpoint's payload (the adapter in PEFT format, optimizer state as safetensors, ...) into a
 * directory that becomes visible only after every writer returned. The engine and the PET plugins plug in here.
 */
@FunctionalInterface
public interface CheckpointWriter {
    void write(Path directory, long step) throws IOException;
}
