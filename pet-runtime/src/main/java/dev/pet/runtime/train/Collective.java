package dev.pet.runtime.train;

import java.util.List;

/**
 * The replicas of a data-parallel run as one group: each knows its rank, and {@link #allGather} hands every replica
 * every replica's message. Spark's barrier tasks implement it with {@code BarrierTaskContext.allGather}; a single
 * process is {@link #single()}.
 */
public interface Collective {
    /** This replica's rank, 0 to {@link #size()} - 1; rank 0 leads (run directory, checkpoints, metrics). */
    int rank();

    /** The number of replicas. */
    int size();

    /**
     * Sends {@code message} and blocks until every replica has sent one; returns all messages in rank order (the
     * same list on every replica).
     */
    List<byte[]> allGather(byte[] message);

    /** One replica alone: a gather returns its own message. */
    static Collective single() {
        return new Collective() {
            @Override
            public int rank() {
                return 0;
            }

            @Override
            public int size() {
                return 1;
            }

            @Override
            public List<byte[]> allGather(byte[] message) {
                return List.of(message);
            }
        };
    }
}
