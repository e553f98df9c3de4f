package dev.pet.spark;

import dev.pet.api.PetException;
import java.util.Locale;
import org.apache.spark.BarrierTaskContext;

/**
 * How the tasks of a data-parallel stage exchange gradients, chosen with the Spark setting {@value #SETTING}:
 * {@code ring} (the default) connects the tasks in a ring of TCP connections; {@code barrier} sends everything through
 * {@code BarrierTaskContext.allGather} and the driver, for clusters whose executors cannot reach each other, at a
 * second or more per gather (Spark polls the reply once a second).
 */
enum Exchange {
    RING,
    BARRIER;

    static final String SETTING = "spark.pet.exchange";

    static Exchange parse(String value) {
        for (Exchange e : values()) {
            if (e.name().equalsIgnoreCase(value.trim())) {
                return e;
            }
        }
        throw new PetException(SETTING + " is '" + value + "'; expected ring or barrier");
    }

    /** Joins this task to its stage's group; every task of the stage calls it, and it returns once all have. */
    TaskCollective open(BarrierTaskContext context, FaultInjection faults) {
        return switch (this) {
            case RING -> RingCollective.open(context, faults);
            case BARRIER -> BarrierCollective.open(context, faults);
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
