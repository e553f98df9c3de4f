package dev.pet.spark;

import java.io.Serializable;
import org.apache.spark.BarrierTaskContext;

/**
 * A test hook: the task of one rank fails once, in the first attempt of the stage, just before its N-th gather
 * (gather 1 checks the run directory, gather 2 is the replicas' handshake; then, per optimizer step, the
 * leader's message and one gradient exchange per micro-batch). {@link #NONE} in real runs.
 *
 * @param rank   the rank whose task fails
 * @param gather the gather it fails before; 0 disables the hook
 */
public record FaultInjection(int rank, long gather) implements Serializable {
    public static final FaultInjection NONE = new FaultInjection(0, 0);

    void beforeGather(BarrierTaskContext context, long count) {
        if (gather > 0 && count == gather && context.partitionId() == rank && context.stageAttemptNumber() == 0) {
            throw new IllegalStateException("injected failure of rank " + rank + " before gather " + gather);
        }
    }
}
