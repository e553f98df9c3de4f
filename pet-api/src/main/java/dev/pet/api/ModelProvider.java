package dev.pet.api;

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

    /** Loads a model: from a directory, a preset with seeded random weights, or a file, as the request says. */
    PretrainedModel load(ModelRequest request);
}
