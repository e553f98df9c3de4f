import dev.pet.api.PetAdapter;
import dev.pet.prefix.PrefixTuningAdapter;
import dev.pet.prefix.PTuningV2Adapter;

/** Prefix tuning and P-tuning v2 for PET Runtime: trainable key/value prefixes in every attention layer. */
module dev.pet.prefix {
    requires transitive dev.pet.api;

    exports dev.pet.prefix;

    provides PetAdapter with PrefixTuningAdapter, PTuningV2Adapter;
}
