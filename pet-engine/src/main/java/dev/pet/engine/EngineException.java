package dev.pet.engine;

import dev.pet.onnx.OnnxException;

/** A failure to configure or run ONNX Runtime: a bad device, a missing provider, a feed of the wrong shape. */
public class EngineException extends OnnxException {
    public EngineException(String message) {
        super(message);
    }

    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
