package dev.pet.api;

import dev.pet.onnx.OnnxException;

/** Root of the errors raised by PET algorithms, model providers and the runtime. */
public class PetException extends OnnxException {
    public PetException(String message) {
        super(message);
    }

    public PetException(String message, Throwable cause) {
        super(message, cause);
    }
}
