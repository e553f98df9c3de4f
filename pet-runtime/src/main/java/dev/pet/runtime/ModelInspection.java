package dev.pet.runtime;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What {@code pet inspect} shows: parameter counts (total, trainable under the PET method), op counts, and the
 * model's anatomy (recognised modules, what is missing, and for an imported ONNX model the import's account).
 */
public record ModelInspection(String model, String pet, long parameters, long trainableParameters,
                              Map<String, Long> opCounts, List<String> anatomy) {
    public ModelInspection {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pet, "pet");
        opCounts = Map.copyOf(opCounts);
        anatomy = List.copyOf(anatomy);
    }

    public ModelInspection(String model, String pet, long parameters, long trainableParameters,
                           Map<String, Long> opCounts) {
        this(model, pet, parameters, trainableParameters, opCounts, List.of());
    }
}
