package dev.pet.runtime.config;

import java.util.Map;
import java.util.Objects;

/**
 * Which PET method to apply and its settings. {@code config} is a plain map without {@code pet_type}; the PET plugin
 * named by {@code petType} binds it to its own typed config and rejects keys it does not know.
 */
public record PetSpec(String petType, Map<String, Object> config) {
    public PetSpec {
        Objects.requireNonNull(petType, "petType");
        if (petType.isBlank()) {
            throw new ConfigException("pet_type", "must not be blank");
        }
        config = config == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(config));
    }
}
