import dev.pet.adapter.BitFitAdapter;
import dev.pet.adapter.BottleneckAdapter;
import dev.pet.api.PetAdapter;

/** Houlsby bottleneck adapters and BitFit for PET Runtime. */
module dev.pet.adapter {
    requires transitive dev.pet.api;

    exports dev.pet.adapter;

    provides PetAdapter with BottleneckAdapter, BitFitAdapter;
}
