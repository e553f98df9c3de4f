package dev.pet.api.onnximport;

import dev.pet.api.PetException;
import java.util.Objects;

/** An ONNX graph holds nothing usable as the family it was read as; carries the report of what was and was not found. */
public final class OnnxImportException extends PetException {
    private final transient ImportReport report;

    public OnnxImportException(String message, ImportReport report) {
        super(message + "\n" + Objects.requireNonNull(report, "report").describe());
        this.report = report;
    }

    /** What was and was not recognised. */
    public ImportReport report() {
        return report;
    }
}
