package dev.pet.runtime.generate;

/** Receives generated text as it becomes final (never text a stop string may still cut off). */
@FunctionalInterface
public interface TextSink {
    /**
     * @param row   which prompt of the batch
     * @param delta new text of that row
     * @return false to stop that row (a closed client)
     */
    boolean accept(int row, String delta);

    /** A note for the user about this request (a prompt truncated to fit); ignored by default. */
    default void warning(String message) {
    }

    static TextSink none() {
        return (row, delta) -> true;
    }
}
