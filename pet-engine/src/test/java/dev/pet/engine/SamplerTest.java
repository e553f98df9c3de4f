package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The sampler against probabilities computed here by hand. */
class SamplerTest {
    private static final long[] NONE = new long[0];

    @Test
    void greedyIsTheArgmaxAndTopKOneIsGreedy() {
        float[] logits = new float[100];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i);
        }
        int argmax = 0;
        for (int i = 1; i < logits.length; i++) {
            argmax = logits[i] > logits[argmax] ? i : argmax;
        }
        assertEquals(argmax, new Sampler(GenerationConfig.greedy(1)).next(logits, NONE, 0));
        Sampler k1 = new Sampler(GenerationConfig.sampling(1, 5.0, 1, 1.0, 3));
        for (int i = 0; i < 20; i++) {
            assertEquals(argmax, k1.next(logits, NONE, 0));
        }
    }

    @Test
    void topKDrawsOnlyFromTheKLargest() {
        float[] logits = {0.1f, 3f, -1f, 2.5f, 2.9f, 0f};
        Set<Long> seen = new HashSet<>();
        Sampler k3 = new Sampler(GenerationConfig.sampling(1, 100.0, 3, 1.0, 3));
        for (int i = 0; i < 300; i++) {
            seen.add(k3.next(logits, NONE, 0));
        }
        assertEquals(Set.of(1L, 3L, 4L), seen);
    }

    @Test
    void topPKeepsTheSmallestSetReachingPAndRenormalises() {
        // Probabilities 0.2, 0.5, 0.3 (logits are their logs): top_p 0.7 keeps tokens 1 and 2.
        float[] logits = {(float) Math.log(0.2), (float) Math.log(0.5), (float) Math.log(0.3)};
        Sampler s = new Sampler(GenerationConfig.sampling(1, 1.0, 0, 0.7, 5));
        Set<Long> seen = new HashSet<>();
        int ones = 0;
        int n = 4000;
        for (int i = 0; i < n; i++) {
            long t = s.next(logits, NONE, 0);
            seen.add(t);
            ones += t == 1 ? 1 : 0;
        }
        assertEquals(Set.of(1L, 2L), seen);
        // Renormalised 0.5 / 0.8 = 0.625; the standard error of 4000 draws is about 0.008.
        assertEquals(0.625, ones / (double) n, 0.04);
    }

    @Test
    void temperatureScalesTheDistribution() {
        // p(1) = 1 / (1 + exp(-2 / T)) with T = 2: 0.7311.
        float[] logits = {0f, 2f};
        Sampler s = new Sampler(GenerationConfig.sampling(1, 2.0, 0, 1.0, 11));
        int ones = 0;
        int n = 4000;
        for (int i = 0; i < n; i++) {
            ones += s.next(logits, NONE, 0) == 1 ? 1 : 0;
        }
        assertEquals(1 / (1 + Math.exp(-1)), ones / (double) n, 0.03);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOfSeenTokens() {
        // Token 0 (seen, 3.0 / 2 = 1.5) loses to token 1 (2.0); token 2 (seen, -0.5 * 2 = -1) loses to token 3.
        float[] logits = {3f, 2f, -0.5f, -0.7f};
        GenerationConfig penalised = GenerationConfig.greedy(1).withRepetitionPenalty(2.0);
        assertEquals(0, new Sampler(GenerationConfig.greedy(1)).next(logits, new long[] {0}, 1));
        assertEquals(1, new Sampler(penalised).next(logits, new long[] {0, 0}, 2));
        float[] negative = {-0.5f, -0.7f};
        assertEquals(1, new Sampler(penalised).next(negative, new long[] {0}, 1));
        // Only the first `length` history entries count.
        assertEquals(0, new Sampler(penalised).next(logits, new long[] {1, 0}, 1));
    }

    @Test
    void theSameSeedGivesTheSameDraws() {
        float[] logits = new float[50];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.cos(i * 0.3);
        }
        Sampler a = new Sampler(GenerationConfig.sampling(1, 1.0, 0, 1.0, 77));
        Sampler b = new Sampler(GenerationConfig.sampling(1, 1.0, 0, 1.0, 77));
        for (int i = 0; i < 50; i++) {
            assertEquals(a.next(logits, NONE, 0), b.next(logits, NONE, 0));
        }
    }

    @Test
    void rejectsBadSettings() {
        assertThrows(EngineException.class, () -> new GenerationConfig(1, -1, 0, 1, 1, 0, -1));
        assertThrows(EngineException.class, () -> new GenerationConfig(1, 1, 0, 0, 1, 0, -1));
        assertThrows(EngineException.class, () -> new GenerationConfig(1, 1, 0, 1, 0, 0, -1));
        assertThrows(EngineException.class, () -> new GenerationConfig(-1, 1, 0, 1, 1, 0, -1));
        assertThrows(EngineException.class, () -> new GenerationConfig(1, 1, -2, 1, 1, 0, -1));
    }
}
