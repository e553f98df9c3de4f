package dev.pet.api;

import java.util.Objects;

/**
 * A PET algorithm's configuration is invalid. It names the {@code pet_config} key as the user wrote it, so the
 * runtime can report the full YAML path ({@code model.model_config.pet_config.lora_rank}).
 */
public class PetConfigException extends PetException {
    private final String petType;
    private final String key;
    private final String problem;

    /**
     * @param petType the algorithm, e.g. {@code lora}
     * @param key     the {@code pet_config} key at fault
     * @param problem what is wrong, phrased to follow the key ("must be >= 1, found 0")
     */
    public PetConfigException(String petType, String key, String problem) {
        super(petType + ": '" + key + "' " + problem);
        this.petType = Objects.requireNonNull(petType, "petType");
        this.key = Objects.requireNonNull(key, "key");
        this.problem = Objects.requireNonNull(problem, "problem");
    }

    public String petType() {
        return petType;
    }

    /** The {@code pet_config} key, as the user wrote it where known. */
    public String key() {
        return key;
    }

    /** What is wrong with the key's value, without the key. */
    public String problem() {
        return problem;
    }

    /** The same problem reported under another name for the key. */
    public PetConfigException withKey(String newKey) {
        PetConfigException e = new PetConfigException(petType, newKey, problem);
        e.setStackTrace(getStackTrace());
        return e;
    }
}
