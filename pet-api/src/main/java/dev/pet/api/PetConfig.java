package dev.pet.api;

/** An algorithm's immutable, validated configuration, bound from a plain map by its {@link PetAdapter}. */
public interface PetConfig {
    /** The canonical algorithm type, e.g. {@code lora}. */
    String petType();

    /**
     * Positions this method's virtual tokens occupy before the real tokens (a prefix length; 0 for most methods):
     * real tokens may then use only the model's remaining positions.
     */
    default int reservedPositions() {
        return 0;
    }
}
