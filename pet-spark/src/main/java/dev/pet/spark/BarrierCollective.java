package dev.pet.spark;

import dev.pet.runtime.train.Collective;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import org.apache.spark.BarrierTaskContext;

/**
 * The tasks of one barrier stage as a {@link Collective}: a gather is {@link BarrierTaskContext#allGather}, which
 * travels through the driver's barrier coordinator as strings, so messages go as Base64. LoRA gradients are small
 * (about 1.2 MB a micro-batch for r=8 on GPT-2-small's c_attn); see docs/BENCHMARKS.md for how far that carries.
 */
final class BarrierCollective implements Collective {
    private final BarrierTaskContext context;
    private final FaultInjection faults;
    private long gathers;

    BarrierCollective(BarrierTaskContext context, FaultInjection faults) {
        this.context = Objects.requireNonNull(context, "context");
        this.faults = Objects.requireNonNull(faults, "faults");
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
}
