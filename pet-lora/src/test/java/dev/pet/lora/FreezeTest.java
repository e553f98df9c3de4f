package dev.pet.lora;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetAdapters;
import dev.pet.api.PetModel;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** MindPet's freeze_include / freeze_exclude refinement of the trainable set. */
class FreezeTest {
    @BeforeAll
    static void setUp() {
        LoraAdapterTest.setUp();
    }

    @Test
    void includeFreezesExcludeUnfreezesAndBothLeavesAsIs() {
        LoraAdapter a = new LoraAdapter();
        PetModel pet = a.getPetModel(LoraAdapterTest.base, a.parseConfig(Map.of("r", 2)));
        String h0 = LoraAdapter.aName("transformer.h.0.attn.c_attn");
        String h1 = LoraAdapter.aName("transformer.h.1.attn.c_attn");
        assertTrue(pet.trainables().contains(h0));

        PetModel refined = PetAdapters.freezePretrainedModel(pet, List.of("*h.0.*"),
                List.of("transformer.ln_f.*", "*h.1.attn.c_attn.lora_A"));
        assertFalse(refined.trainables().contains(h0), "freeze_include froze the h.0 factors");
        assertTrue(refined.trainables().contains("transformer.ln_f.weight"), "freeze_exclude unfroze ln_f");
        assertTrue(refined.trainables().contains("transformer.ln_f.bias"));
        assertTrue(refined.trainables().contains(h1), "h.1 untouched by include");

        PetModel both = PetAdapters.freezePretrainedModel(pet, List.of("transformer.ln_f.weight", "*h.1*"),
                List.of("transformer.ln_f.weight", "*h.1*"));
        assertFalse(both.trainables().contains("transformer.ln_f.weight"), "frozen before, matched both: frozen");
        assertTrue(both.trainables().contains(h1), "trainable before, matched both: trainable");
    }
}
