package dev.pet.runtime.config;

import java.util.Objects;
import java.util.Optional;

/**
 * {@code model}: the model config, the architecture and the PET method. {@code pet} is null for a run without PET
 * (full fine-tuning or plain evaluation of the base model).
 */
public record ModelSection(ModelConfig modelConfig, String archType, PetSpec pet) {
    public ModelSection {
        Objects.requireNonNull(modelConfig, "modelConfig");
        Objects.requireNonNull(archType, "archType");
    }

    public Optional<PetSpec> petSpec() {
        return Optional.ofNullable(pet);
    }
}
