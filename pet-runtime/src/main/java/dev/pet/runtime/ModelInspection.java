package dev.pet.runtime;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What {@code pet inspect} shows: parameter counts (total, trainable under the PET method), op counts, the
 * model's anatomy (recognised modules, what is missing, and for an imported ONNX model the import's account), and
 * for a quantized base its settings, bytes per parameter, per-layer quantization error and use of contrib ops.
 */
public record ModelInspection(String model, String pet, long parameters, long trainableParameters,
                              Map<String, Long> opCounts, List<String> anatomy, List<String> quantization) {
    public ModelInspection {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pet, "pet");
        opCounts = Map.copyOf(opCounts);
        anatomy = List.copyOf(anatomy);
        quantization = List.copyOf(quantization);
    }

    public ModelInspection(String model, String pet, long parameters, long trainableParameters,
                           Map<String, Long> opCounts, List<String> anatomy) {
        this(model, pet, parameters, trainableParameters, opCounts, anatomy, List.of());
    }

    public ModelInspection(String model, String pet, long parameters, long trainableParameters,
                           Map<String, Long> opCounts) {
        this(model, pet, parameters, trainableParameters, opCounts, List.of());
    }
}
