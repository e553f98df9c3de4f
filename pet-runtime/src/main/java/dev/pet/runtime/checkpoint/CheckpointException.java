package dev.pet.runtime.checkpoint;

import dev.pet.api.PetException;

/** A checkpoint cannot be written or read; the message names the directory or file. */
public class CheckpointException extends PetException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
