package dev.pet.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PetConfigsTest {
    private static final Map<String, String> KEYS = Map.of("r", "r", "lora_rank", "r", "seed", "seed",
            "layers", "layers");

    record Rank(int r) {
        Rank {
            if (r < 1) {
                throw new PetConfigException("lora", "r", "must be >= 1, found " + r);
            }
        }
    }

    @Test
    void errorsNameTheKeyAsWritten() {
        PetConfigs v = PetConfigs.bind("lora", Map.of("lora_rank", 0), KEYS);
        PetConfigException e = assertThrows(PetConfigException.class, () -> v.build(() -> new Rank(v.integer("r",
                8))));
        assertEquals("lora_rank", e.key(), "validation in the record is reported under the user's key");
        assertEquals("must be >= 1, found 0", e.problem());
        assertEquals("lora: 'lora_rank' must be >= 1, found 0", e.getMessage());
        assertEquals("lora_rank", assertThrows(PetConfigException.class, () -> PetConfigs.bind("lora",
                Map.of("lora_rank", 2.5), KEYS).integer("r", 8)).key());
    }

    @Test
    void unknownKeysAndConflictingAliasesAreRejected() {
        PetConfigException unknown = assertThrows(PetConfigException.class,
                () -> PetConfigs.bind("lora", Map.of("lora_rnk", 8), KEYS));
        assertEquals("lora_rnk", unknown.key());
        assertTrue(unknown.getMessage().contains("lora_rank"), "lists the valid keys: " + unknown.getMessage());
        PetConfigException conflict = assertThrows(PetConfigException.class,
                () -> PetConfigs.bind("lora", new java.util.TreeMap<>(Map.of("r", 8, "lora_rank", 4)), KEYS));
        assertTrue(conflict.getMessage().contains("(4 vs 8)") && conflict.getMessage().contains("'lora_rank'"), conflict.getMessage());
        assertEquals(8, PetConfigs.bind("lora", Map.of("r", 8, "lora_rank", 8), KEYS).integer("r", 1),
                "two names with one value agree");
    }

    @Test
    void typedValuesWithDefaults() {
        PetConfigs v = PetConfigs.bind("lora", Map.of("seed", 7L, "layers", List.of(0, 2)), KEYS);
        assertEquals(7L, v.longValue("seed", 42));
        assertEquals(List.of(0, 2), v.integers("layers"));
        assertEquals(8, v.integer("r", 8));
        assertEquals("seed", assertThrows(PetConfigException.class, () -> PetConfigs.bind("lora",
                Map.of("seed", "x"), KEYS).longValue("seed", 1)).key());
    }
}
