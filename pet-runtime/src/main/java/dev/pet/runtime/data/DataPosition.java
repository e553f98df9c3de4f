package dev.pet.runtime.data;

/**
 * Where a training data stream stands: the epoch and the index of the next batch within it. Saved in checkpoints so a
 * resumed run sees exactly the batches an uninterrupted run would have.
 */
public record DataPosition(int epoch, long batchIndex) {
    public static final DataPosition START = new DataPosition(0, 0);

    public DataPosition {
        if (epoch < 0 || batchIndex < 0) {
            throw new IllegalArgumentException("data position must be non-negative, found epoch " + epoch
                    + ", batch " + batchIndex);
        }
    }
}
