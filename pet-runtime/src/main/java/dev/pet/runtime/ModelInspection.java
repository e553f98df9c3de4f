package dev.pet.runtime;

import java.util.Map;
import java.util.Objects;

/** What {@code pet inspect} shows: parameter counts (total, trainable under the PET method) and op counts. */
public record ModelInspection(String model, String pet, long parameters, long trainableParameters,
                              Map<String, Long> opCounts) {
    public ModelInspection {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pet, "pet");
        opCounts = Map.copyOf(opCounts);
    }
}
