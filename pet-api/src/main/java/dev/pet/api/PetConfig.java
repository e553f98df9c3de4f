package dev.pet.api;

/** An algorithm's immutable, validated configuration, bound from a plain map by its {@link PetAdapter}. */
public interface PetConfig {
    /** The canonical algorithm type, e.g. {@code lora}. */
    String petType();
}
