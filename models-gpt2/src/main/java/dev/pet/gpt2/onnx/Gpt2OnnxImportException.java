package dev.pet.gpt2.onnx;

import dev.pet.api.PetException;
import java.util.Objects;

/** Thrown when an ONNX file holds nothing usable as GPT-2; carries the full report of what was and was not found. */
public final class Gpt2OnnxImportException extends PetException {
    private final transient Gpt2OnnxReport report;

    public Gpt2OnnxImportException(String message, Gpt2OnnxReport report) {
        super(message + "\n" + Objects.requireNonNull(report, "report").describe());
        this.report = report;
    }

    public Gpt2OnnxReport report() {
        return report;
    }
}
