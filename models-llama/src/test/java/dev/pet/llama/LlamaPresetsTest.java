package dev.pet.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.Test;

class LlamaPresetsTest {
    /** Meta's Llama-3.1-8B has 8,030,261,248 parameters (its config.json: untied head, GQA 32/8, llama3 RoPE x8). */
    @Test
    void llama31EightBHasTheReferenceParameterCountAndRope() {
        LlamaConfig c = LlamaPresets.config("llama-3.1-8b");
        long params = LlamaWeights.expectedShapes(c).values().stream().mapToLong(s -> {
            long n = 1;
            for (long d : s) {
                n *= d;
            }
            return n;
        }).sum();
        assertEquals(8_030_261_248L, params);
        assertFalse(c.tieWordEmbeddings());
        assertEquals(new RopeScaling("llama3", 8, 1, 4, 8192), c.ropeScaling());
        assertEquals(128, c.headDim());
        assertEquals(500000, c.ropeTheta());
    }
}
