package dev.pet.onnx;

/**
 * Root of every error PET Runtime raises about models, tensors and files. Messages name the file, tensor or
 * node involved and say what was expected and what was found.
 */
public class OnnxException extends RuntimeException {
    public OnnxException(String message) {
        super(message);
    }

    public OnnxException(String message, Throwable cause) {
        super(message, cause);
    }
}
