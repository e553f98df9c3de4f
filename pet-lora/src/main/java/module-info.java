import dev.pet.api.PetAdapter;
import dev.pet.lora.LoraAdapter;

/** LoRA for PET Runtime: low-rank updates on linear projections, PEFT adapter files, merging. */
module dev.pet.lora {
    requires transitive dev.pet.api;

    exports dev.pet.lora;

    provides PetAdapter with LoraAdapter;
}
