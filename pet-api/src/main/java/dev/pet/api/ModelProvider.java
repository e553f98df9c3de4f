package dev.pet.api;

import dev.pet.onnx.ir.Model;
import java.util.Set;

/**
 * Service-provider interface for a family of pretrained models (GPT-2, ...). Found through
 * {@link java.util.ServiceLoader}; new inputs arrive inside {@link ModelRequest} so the SPI can grow without breaking
 * plugins.
 */
public interface ModelProvider {
    /** Short, lowercase, unique id, e.g. {@code gpt2}. */
    String id();

    /** Names this provider answers to besides its id: presets ({@code gpt2-tiny}), config types, arch names. */
    Set<String> aliases();

    /**
     * Whether an ONNX graph that comes without a {@code config.json} is of this family, judged from its module
     * names; the runtime then asks this provider to {@link #load} it. Families that import no ONNX say false.
     */
    default boolean recognisesOnnx(Model graph) {
        return false;
    }

    /** Loads a model: from a directory, a preset with seeded random weights, or an
     * ONNX export ({@link dev.pet.api.onnximport.OnnxExport}), as the request says. */
    PretrainedModel load(ModelRequest request);
}
