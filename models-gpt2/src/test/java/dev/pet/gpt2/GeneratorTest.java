package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.CompiledGraph;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.engine.EngineException;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtEngine;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * pet-engine's family-neutral generator on the GPT-2 with-past graph: the key/value cache gives exactly the tokens of
 * full recomputation, greedy decoding follows an independent double-precision GPT-2, and left-padded batches give
 * each prompt's tokens.
 */
class GeneratorTest {
    private static final long[] PROMPT = {464, 2068, 7586, 21831};
    private static Gpt2Weights weights;
    private static OrtEngine engine;
    private static Generator generator;

    @BeforeAll
    static void setUp() {
        weights = TestModels.nonTrivial(TestModels.tiny(), 7);
        engine = OrtEngine.cpu();
        CompiledGraph g = engine.compile(Gpt2Graph.build(weights, CausalLmGraphOptions.inference()).model());
        generator = new Generator(g, weights.config().nPositions());
    }

    @AfterAll
    static void tearDown() {
        engine.close();
    }

    @Test
    void greedyWithCacheEqualsRecomputationAndTheNaiveReference() {
        GenerationConfig cfg = GenerationConfig.greedy(12);
        long[] cached = generator.generate(PROMPT, cfg);
        assertEquals(12, cached.length);
        assertArrayEquals(generator.generateWithoutCache(PROMPT, cfg), cached);

        NaiveGpt2 naive = new NaiveGpt2(weights);
        long[] seq = Arrays.copyOf(PROMPT, PROMPT.length + 12);
        for (int n = PROMPT.length; n < seq.length; n++) {
            long[] ids = Arrays.copyOf(seq, n);
            long[] mask = new long[n];
            Arrays.fill(mask, 1);
            double[][] logits = naive.logits(ids, mask);
            seq[n] = dev.pet.engine.Sampler.argmax(logits[n - 1]);
        }
        assertArrayEquals(Arrays.copyOfRange(seq, PROMPT.length, seq.length), cached);
    }

    @Test
    void seededSamplingWithCacheEqualsRecomputationAndIsReproducible() {
        GenerationConfig cfg = GenerationConfig.sampling(16, 0.9, 50, 0.95, 1234).withRepetitionPenalty(1.3);
        long[] cached = generator.generate(PROMPT, cfg);
        assertArrayEquals(generator.generateWithoutCache(PROMPT, cfg), cached);
        assertArrayEquals(cached, generator.generate(PROMPT, cfg));
        long[] otherSeed = generator.generate(PROMPT, GenerationConfig.sampling(16, 0.9, 50, 0.95, 99)
                .withRepetitionPenalty(1.3));
        assertFalse(Arrays.equals(cached, otherSeed), "a different seed should sample differently");
    }

    @Test
    void leftPaddedBatchGivesEachPromptItsOwnTokens() {
        List<long[]> prompts = List.of(PROMPT, new long[] {11, 290}, new long[] {262, 318, 257, 1332, 13, 383});
        GenerationConfig cfg = GenerationConfig.sampling(10, 0.8, 40, 1.0, 5);
        List<long[]> batched = generator.generate(prompts, cfg, null, Generator.TokenSink.none());
        for (int r = 0; r < prompts.size(); r++) {
            assertArrayEquals(generator.generate(prompts.get(r), cfg), batched.get(r), "row " + r);
        }
    }

    @Test
    void stopsAtEndOfTextAndWhenTheSinkSaysSo() {
        long[] greedy = generator.generate(PROMPT, GenerationConfig.greedy(10));
        // Declare the third greedy token the end-of-text token: generation stops before it.
        long[] stopped = generator.generate(PROMPT, GenerationConfig.greedy(10).withEosTokenId(greedy[2]));
        int firstHit = 0;
        while (greedy[firstHit] != greedy[2]) {
            firstHit++;
        }
        assertArrayEquals(Arrays.copyOf(greedy, firstHit), stopped);

        List<Long> streamed = new ArrayList<>();
        List<long[]> out = generator.generate(List.of(PROMPT), GenerationConfig.greedy(10), null, (row, t) -> {
            streamed.add(t);
            return streamed.size() < 4;
        });
        assertArrayEquals(Arrays.copyOf(greedy, 4), out.get(0));
        assertEquals(4, streamed.size());
    }

    @Test
    void stopsAtThePositionLimit() {
        long[] prompt = new long[120];
        Arrays.fill(prompt, 464);
        assertEquals(8, generator.generate(prompt, GenerationConfig.greedy(20)).length);
        EngineException e = assertThrows(EngineException.class, () -> generator.generate(new long[130],
                GenerationConfig.greedy(1)));
        assertTrue(e.getMessage().contains("128 positions"), e.getMessage());
    }

    @Test
    void aGraphWithoutCacheRecomputesToTheSameTokensAndBadTokensAreRefused() {
        try (OrtEngine e = OrtEngine.cpu()) {
            CompiledGraph training = e.compile(Gpt2Graph.build(weights, CausalLmGraphOptions.training()).model());
            Generator plain = new Generator(training, 128);
            assertEquals(0, plain.layers());
            GenerationConfig cfg = GenerationConfig.sampling(6, 0.9, 50, 0.95, 3);
            assertArrayEquals(generator.generate(PROMPT, cfg), plain.generate(PROMPT, cfg));
        }
        EngineException ex = assertThrows(EngineException.class, () -> generator.generate(new long[] {1, 50257},
                GenerationConfig.greedy(1)));
        assertTrue(ex.getMessage().contains("outside the vocabulary"), ex.getMessage());
    }
}
