package dev.pet.gpt2;

import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import dev.pet.hf.CausalLmGraphOptions;
import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Text generation over a {@link Gpt2Session} whose graph has the key/value cache
 * ({@link CausalLmGraphOptions.KvCache#PAST_AND_PRESENT}): the prompt runs once, then each new token runs alone against
 * the cached keys and values. The session is reused across calls; the generator does not own it.
 */
public final class Generator {
    private final Gpt2Session session;

    public Generator(Gpt2Session session) {
        this.session = Objects.requireNonNull(session, "session");
        if (session.graph().options().kvCache() != CausalLmGraphOptions.KvCache.PAST_AND_PRESENT) {
            throw new PetException("generation needs a GPT-2 graph with past_key_values inputs and present "
                    + "outputs, found kvCache=" + session.graph().options().kvCache());
        }
    }

    /** Generates continuation token ids (the prompt not included) with the key/value cache. */
    public long[] generate(long[] prompt, GenerationConfig config) {
        checkPrompt(prompt, config);
        Sampler sampler = new Sampler(config);
        long[] out = new long[config.maxNewTokens()];
        int n = 0;
        Gpt2Output previous = null;
        try {
            Gpt2Output step = session.run(new long[][] {prompt}, null, null, null);
            while (true) {
                if (previous != null) {
                    previous.close();
                }
                previous = step;
                if (n == config.maxNewTokens()) {
                    break;
                }
                long next = sampler.next(step.logits(0, step.sequenceLength() - 1));
                out[n++] = next;
                if (next == config.eosTokenId() || n == config.maxNewTokens()) {
                    break;
                }
                step = session.run(new long[][] {{next}}, null, null, step.cache());
            }
        } finally {
            if (previous != null) {
                previous.close();
            }
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * The same as {@link #generate(long[], GenerationConfig)} but recomputing the whole sequence at every step
     * without a cache: slow, and the reference the cached path is tested against.
     */
    public long[] generateWithoutCache(long[] prompt, GenerationConfig config) {
        checkPrompt(prompt, config);
        Sampler sampler = new Sampler(config);
        long[] seq = Arrays.copyOf(prompt, prompt.length + config.maxNewTokens());
        int len = prompt.length;
        int n = 0;
        while (n < config.maxNewTokens()) {
            long next;
            try (Gpt2Output o = session.run(new long[][] {Arrays.copyOf(seq, len)}, null, null, null)) {
                next = sampler.next(o.logits(0, len - 1));
            }
            seq[len++] = next;
            n++;
            if (next == config.eosTokenId()) {
                break;
            }
        }
        return Arrays.copyOfRange(seq, prompt.length, len);
    }

    /** Encodes the prompt, generates, and decodes only the continuation. */
    public String generate(TextTokenizer tokenizer, String prompt, GenerationConfig config) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        long[] ids = tokenizer.encode(prompt);
        return tokenizer.decode(generate(ids, config));
    }

    private void checkPrompt(long[] prompt, GenerationConfig config) {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(config, "config");
        if (prompt.length == 0) {
            throw new PetException("prompt: expected at least one token, found 0");
        }
        long total = (long) prompt.length + config.maxNewTokens();
        long limit = session.config().nPositions();
        // The last generated token is never fed back, so prompt + max_new_tokens - 1 positions are run.
        if (total - 1 > limit) {
            throw new PetException("prompt length " + prompt.length + " + max_new_tokens " + config.maxNewTokens()
                    + " needs " + (total - 1) + " positions, more than n_positions " + limit);
        }
    }

    /** Picks the next token from one row of logits. */
    static final class Sampler {
        private final GenerationConfig config;
        private final SplittableRandom random;

        Sampler(GenerationConfig config) {
            this.config = config;
            this.random = new SplittableRandom(config.seed());
        }

        long next(float[] logits) {
            if (!config.doSample()) {
                return argmax(logits);
            }
            int v = logits.length;
            double[] scaled = new double[v];
            for (int i = 0; i < v; i++) {
                scaled[i] = logits[i] / config.temperature();
            }
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            // Descending by logit; ties by id so the order (and the sample) is deterministic.
            Arrays.sort(order, (a, b) -> scaled[a] != scaled[b] ? Double.compare(scaled[b], scaled[a])
                    : Integer.compare(a, b));
            int keep = config.topK() > 0 ? Math.min(config.topK(), v) : v;
            double max = scaled[order[0]];
            double[] prob = new double[keep];
            double z = 0;
            for (int i = 0; i < keep; i++) {
                prob[i] = Math.exp(scaled[order[i]] - max);
                z += prob[i];
            }
            if (config.topP() < 1) {
                double cumulative = 0;
                int cut = keep;
                for (int i = 0; i < keep; i++) {
                    cumulative += prob[i] / z;
                    if (cumulative >= config.topP()) {
                        cut = i + 1;
                        break;
                    }
                }
                keep = cut;
                z = 0;
                for (int i = 0; i < keep; i++) {
                    z += prob[i];
                }
            }
            double u = random.nextDouble() * z;
            for (int i = 0; i < keep; i++) {
                u -= prob[i];
                if (u < 0) {
                    return order[i];
                }
            }
            return order[keep - 1];
        }

        static long argmax(float[] logits) {
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            return best;
        }
    }
}
