package dev.pet.runtime.train;

import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Replicas as threads of one JVM: a gather meets at a barrier (two phases, so no slot is overwritten early). */
final class ThreadCollective {
    private final byte[][] slots;
    private final CyclicBarrier barrier;

    ThreadCollective(int size) {
        this.slots = new byte[size][];
        this.barrier = new CyclicBarrier(size);
    }

    /** Breaks the barrier, so replicas waiting on a failed one fail too (as Spark kills a barrier stage). */
    void abort() {
        barrier.reset();
    }

    Collective replica(int rank) {
        return new Collective() {
            @Override
            public int rank() {
                return rank;
            }

            @Override
            public int size() {
                return slots.length;
            }

            @Override
            public List<byte[]> allGather(byte[] message) {
                slots[rank] = message.clone();
                await();
                List<byte[]> all = List.of(slots.clone());
                await();
                return all;
            }
        };
    }

    private void await() {
        try {
            barrier.await(120, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (BrokenBarrierException | TimeoutException e) {
            throw new IllegalStateException("another replica failed", e);
        }
    }
}
