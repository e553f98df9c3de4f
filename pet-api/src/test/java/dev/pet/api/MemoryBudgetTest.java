package dev.pet.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.io.ScratchFile;
import org.junit.jupiter.api.Test;

class MemoryBudgetTest {
    @Test
    void arithmeticSaturatesInsteadOfOverflowing() {
        assertEquals(6, MemoryBudget.multiply(2, 3));
        assertEquals(Long.MAX_VALUE, MemoryBudget.multiply(1L << 40, 1L << 40));
        assertEquals(Long.MAX_VALUE, MemoryBudget.add(Long.MAX_VALUE - 1, 5));
        assertEquals(7, MemoryBudget.add(3, 4));
    }

    @Test
    void aSizeThatCannotFitSaysWhatWasAskedAndWhatFits() {
        long available = MemoryBudget.available();
        long perUnit = 512;
        long units = available / MemoryBudget.BYTES_PER_TRAINABLE / perUnit + 1;
        MemoryBudget.requireTrainable("lora: lora_rank " + (units - 1), (units - 1) * perUnit, "lora_rank", perUnit);
        PetException e = assertThrows(PetException.class, () -> MemoryBudget.requireTrainable("lora: lora_rank " + units
                + " on 2 modules", units * perUnit, "lora_rank", perUnit));
        assertTrue(e.getMessage().startsWith("lora: lora_rank " + units + " on 2 modules makes "), e.getMessage());
        assertTrue(e.getMessage().contains("trainable parameters, about ")
                && e.getMessage().contains("(32 bytes each), but this JVM may use ")
                && e.getMessage().endsWith("; at most lora_rank " + (units - 1) + " fits"), e.getMessage());
        e = assertThrows(PetException.class, () -> MemoryBudget.requireWeights("GPT-2 with n_layer 1000000000",
                Long.MAX_VALUE, "n_layer", 1L << 20));
        assertTrue(e.getMessage().contains("more than 9.2e18 weights, about more than 8 EiB (4 bytes each, written to "
                + ScratchFile.folder() + "), but its file system has "), e.getMessage());
        long free = MemoryBudget.usableSpace(ScratchFile.folder());
        e = assertThrows(PetException.class, () -> MemoryBudget.requireWeights("GPT-2 with n_layer 9", free,
                "n_layer", free / 9));
        assertTrue(e.getMessage().endsWith("; at most n_layer 2 fits"), e.getMessage());
        MemoryBudget.requireWeights("GPT-2 with n_layer 2", free / 8, "n_layer", free / 16);
    }

    @Test
    void sizesReadLikeSizes() {
        assertEquals("512 B", MemoryBudget.size(512));
        assertEquals("1.5 KiB", MemoryBudget.size(1536));
        assertEquals("6.0 GiB", MemoryBudget.size(6L << 30));
    }
}
