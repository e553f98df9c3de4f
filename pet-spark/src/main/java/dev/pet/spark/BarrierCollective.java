package dev.pet.spark;

import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import org.apache.spark.BarrierTaskContext;

/**
 * The tasks of one barrier stage as a {@link Collective}: a gather is {@link BarrierTaskContext#allGather}, which
 * travels through the driver's barrier coordinator as strings, so messages go as Base64. LoRA gradients are small
 * (about 1.2 MB a micro-batch for r=8 on GPT-2-small's c_attn); see docs/BENCHMARKS.md for how far that carries.
 * Spark polls each gather's reply once a second, so a gather costs at least a second: {@link RingCollective} is the
 * default, this is for executors that cannot connect to each other.
 */
final class BarrierCollective implements TaskCollective {
    private final BarrierTaskContext context;
    private final FaultInjection faults;
    private long gathers;

    private BarrierCollective(BarrierTaskContext context, FaultInjection faults) {
        this.context = Objects.requireNonNull(context, "context");
        this.faults = Objects.requireNonNull(faults, "faults");
    }

    /** Every task of the stage calls it; it returns once all have. */
    static BarrierCollective open(BarrierTaskContext context, FaultInjection faults) {
        context.barrier();
        return new BarrierCollective(context, faults);
    }

    @Override
    public int rank() {
        return context.partitionId();
    }

    @Override
    public int size() {
        return context.getTaskInfos().length;
    }

    @Override
    public List<byte[]> allGather(byte[] message) {
        gathers++;
        faults.beforeGather(context, gathers);
        String[] all = context.allGather(Base64.getEncoder().encodeToString(message));
        List<byte[]> out = new ArrayList<>(all.length);
        for (String s : all) {
            out.add(Base64.getDecoder().decode(s));
        }
        return out;
    }

    @Override
    public void close() {
        // nothing held: the gathers go through Spark's barrier coordinator
    }
}
