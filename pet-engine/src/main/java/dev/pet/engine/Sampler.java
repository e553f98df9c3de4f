package dev.pet.engine;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits as a {@link GenerationConfig} says. One sampler per sequence: it owns
 * the seeded random source, so a sequence's tokens depend only on its logits and the seed, not on what else runs.
 */
public final class Sampler {
    private final GenerationConfig config;
    private final SplittableRandom random;

    public Sampler(GenerationConfig config) {
        this.config = Objects.requireNonNull(config, "config");
        this.random = new SplittableRandom(config.seed());
    }

    /**
     * The next token.
     *
     * @param logits  scores over the vocabulary (not modified)
     * @param history tokens of the sequence so far (prompt and generated), for the repetition penalty
     * @param length  how many entries of {@code history} are used
     */
    public long next(float[] logits, long[] history, int length) {
        int v = logits.length;
        double[] scores = new double[v];
        for (int i = 0; i < v; i++) {
            scores[i] = logits[i];
        }
        if (config.repetitionPenalty() != 1) {
            boolean[] seen = new boolean[v];
            for (int i = 0; i < length; i++) {
                long t = history[i];
                if (t >= 0 && t < v && !seen[(int) t]) {
                    seen[(int) t] = true;
                    double s = scores[(int) t];
                    scores[(int) t] = s > 0 ? s / config.repetitionPenalty() : s * config.repetitionPenalty();
                }
            }
        }
        if (!config.sampling()) {
            return argmax(scores);
        }
        for (int i = 0; i < v; i++) {
            scores[i] /= config.temperature();
        }
        Integer[] order = new Integer[v];
        for (int i = 0; i < v; i++) {
            order[i] = i;
        }
        // Descending by score; ties by id so the order (and the draw) is deterministic.
        Arrays.sort(order, (a, b) -> scores[a] != scores[b] ? Double.compare(scores[b], scores[a])
                : Integer.compare(a, b));
        int keep = config.topK() > 0 ? Math.min(config.topK(), v) : v;
        double max = scores[order[0]];
        double[] prob = new double[keep];
        double z = 0;
        for (int i = 0; i < keep; i++) {
            prob[i] = Math.exp(scores[order[i]] - max);
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

    /** Index of the largest score (the first on ties). */
    public static int argmax(double[] scores) {
        int best = 0;
        for (int i = 1; i < scores.length; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        return best;
    }
}
