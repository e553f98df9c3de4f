package dev.pet.runtime.data;

import java.util.Iterator;
import java.util.Objects;

/**
 * Endless training batches with a resumable position: {@link #position()} is where the next batch comes from, so
 * saving it after a step and passing it back to {@link PackedDataset#trainBatches} continues exactly.
 */
public final class BatchIterator implements Iterator<Batch> {
    private final PackedDataset dataset;
    private final int batchSize;
    private final long seed;
    private final long batchesPerEpoch;
    private DataPosition position;
    private long[] order;
    private int orderEpoch = -1;

    BatchIterator(PackedDataset dataset, int batchSize, long seed, DataPosition start) {
        this.dataset = Objects.requireNonNull(dataset, "dataset");
        Objects.requireNonNull(start, "start");
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, found " + batchSize);
        }
        this.batchSize = batchSize;
        this.seed = seed;
        this.batchesPerEpoch = dataset.batchesPerEpoch(batchSize);
        if (batchesPerEpoch == 0) {
            throw new DataException(dataset + ": " + dataset.tokenCount() + " tokens make " + dataset.windowCount()
                    + " windows of " + dataset.seqLength() + " tokens, fewer than one batch of " + batchSize
                    + "; lower runner_config.batch_size (Trainer.Builder.batchSize) or model.model_config.seq_length"
                    + " (seqLength), or give more text");
        }
        if (start.batchIndex() > batchesPerEpoch) {
            throw new DataException("data position " + start + " is past the " + batchesPerEpoch
                    + " batches of an epoch of " + dataset + "; was the checkpoint written for other data?");
        }
        this.position = normalize(start);
    }

    private DataPosition normalize(DataPosition p) {
        return p.batchIndex() == batchesPerEpoch ? new DataPosition(p.epoch() + 1, 0) : p;
    }

    public DataPosition position() {
        return position;
    }

    public long batchesPerEpoch() {
        return batchesPerEpoch;
    }

    @Override
    public boolean hasNext() {
        return true;
    }

    @Override
    public Batch next() {
        DataPosition at = position;
        if (orderEpoch != at.epoch()) {
            order = dataset.order(seed, at.epoch());
            orderEpoch = at.epoch();
        }
        int s = dataset.seqLength();
        long[] ids = new long[batchSize * (s + 1)];
        float[] mask = new float[batchSize * s];
        long first = at.batchIndex() * batchSize;
        for (int row = 0; row < batchSize; row++) {
            dataset.copyWindow(order[(int) (first + row)], row, ids, mask);
        }
        position = normalize(new DataPosition(at.epoch(), at.batchIndex() + 1));
        return new Batch(batchSize, s, ids, mask, at);
    }
}
