package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.hf.CausalLmGraphOptions;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Generation with the key/value cache gives exactly the tokens of full recomputation at every step. */
class GeneratorTest {
    private static Gpt2Session session;
    private static final long[] PROMPT = {464, 2068, 7586, 21831};

    @BeforeAll
    static void setUp() {
        session = Gpt2Session.create(Gpt2Graph.build(TestModels.nonTrivial(TestModels.tiny(), 7),
                CausalLmGraphOptions.inference()));
    }

    @AfterAll
    static void tearDown() {
        session.close();
    }

    @Test
    void greedyWithCacheEqualsRecomputation() {
        Generator g = new Generator(session);
        GenerationConfig cfg = GenerationConfig.greedy(20).withEosTokenId(-1);
        long[] cached = g.generate(PROMPT, cfg);
        assertEquals(20, cached.length);
        assertArrayEquals(g.generateWithoutCache(PROMPT, cfg), cached);
    }

    @Test
    void seededSamplingWithCacheEqualsRecomputationAndIsReproducible() {
        Generator g = new Generator(session);
        GenerationConfig cfg = GenerationConfig.sampling(16, 0.9, 50, 0.95, 1234).withEosTokenId(-1);
        long[] cached = g.generate(PROMPT, cfg);
        assertArrayEquals(g.generateWithoutCache(PROMPT, cfg), cached);
        assertArrayEquals(cached, g.generate(PROMPT, cfg));
        long[] otherSeed = g.generate(PROMPT, GenerationConfig.sampling(16, 0.9, 50, 0.95, 99).withEosTokenId(-1));
        assertTrue(!java.util.Arrays.equals(cached, otherSeed), "a different seed should sample differently");
    }

    @Test
    void stopsAtEndOfText() {
        Generator g = new Generator(session);
        long[] greedy = g.generate(PROMPT, GenerationConfig.greedy(10).withEosTokenId(-1));
        // Declare the third greedy token the end-of-text token: generation must stop right after it.
        long[] stopped = g.generate(PROMPT, GenerationConfig.greedy(10).withEosTokenId(greedy[2]));
        int firstHit = 0;
        while (greedy[firstHit] != greedy[2]) {
            firstHit++;
        }
        assertEquals(firstHit + 1, stopped.length);
        assertEquals(greedy[2], stopped[stopped.length - 1]);
    }

    @Test
    void topKOneIsGreedyAndTopKLimitsTheChoice() {
        float[] logits = new float[100];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i);
        }
        long argmax = Generator.Sampler.argmax(logits);
        Generator.Sampler k1 = new Generator.Sampler(GenerationConfig.sampling(1, 5.0, 1, 1.0, 3));
        for (int i = 0; i < 20; i++) {
            assertEquals(argmax, k1.next(logits));
        }
        Set<Long> top3 = new HashSet<>();
        for (int round = 0; round < 3; round++) {
            long best = -1;
            for (int i = 0; i < logits.length; i++) {
                if (!top3.contains((long) i) && (best < 0 || logits[i] > logits[(int) best])) {
                    best = i;
                }
            }
            top3.add(best);
        }
        Set<Long> seen = new HashSet<>();
        Generator.Sampler k3 = new Generator.Sampler(GenerationConfig.sampling(1, 100.0, 3, 1.0, 3));
        for (int i = 0; i < 300; i++) {
            seen.add(k3.next(logits));
        }
        assertEquals(top3, seen);
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // Probabilities 0.5, 0.3, 0.2 (logits are their logs): top_p 0.7 keeps the first two.
        float[] logits = {(float) Math.log(0.2), (float) Math.log(0.5), (float) Math.log(0.3)};
        Generator.Sampler s = new Generator.Sampler(GenerationConfig.sampling(1, 1.0, 0, 0.7, 5));
        Set<Long> seen = new HashSet<>();
        int ones = 0;
        for (int i = 0; i < 2000; i++) {
            long t = s.next(logits);
            seen.add(t);
            ones += t == 1 ? 1 : 0;
        }
        assertEquals(Set.of(1L, 2L), seen);
        // Renormalised 0.5/0.8 = 0.625; 2000 draws give a standard error of about 0.011.
        assertEquals(0.625, ones / 2000.0, 0.05);
    }

    @Test
    void rejectsPromptsThatWouldOutgrowThePositions() {
        Generator g = new Generator(session);
        PetException e = assertThrows(PetException.class,
                () -> g.generate(new long[120], GenerationConfig.greedy(20)));
        assertTrue(e.getMessage().contains("n_positions 128"), e.getMessage());
    }

    @Test
    void rejectsAGraphWithoutCache() {
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(TestModels.nonTrivial(TestModels.tiny(), 1),
                CausalLmGraphOptions.training()))) {
            assertThrows(PetException.class, () -> new Generator(s));
        }
    }
}
