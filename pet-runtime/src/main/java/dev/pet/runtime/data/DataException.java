package dev.pet.runtime.data;

import dev.pet.api.PetException;

/** A corpus cannot be read: the message names the file (and line or offset) and what was wrong. */
public class DataException extends PetException {
    public DataException(String message) {
        super(message);
    }

    public DataException(String message, Throwable cause) {
        super(message, cause);
    }
}
