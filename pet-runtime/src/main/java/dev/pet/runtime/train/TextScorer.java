package dev.pet.runtime.train;

import dev.pet.api.TextTokenizer;
import dev.pet.engine.OrtEngine;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;

/**
 * Scores texts one at a time with a compiled eval graph, as {@code pet eval} scores a jsonl record
 * {@code {"text": ...}}: the text's tokens and the end-of-text token, cut into windows of {@code seq_length + 1}
 * tokens, each window predicting its tokens 1..n from the ones before. Unlike {@code pet eval}, which packs a corpus
 * and drops the remainder, a row's last, shorter window counts too, so every row of two or more tokens gets a score.
 * Holds the engine that runs the graph until {@link #close()}; one batch at a time (not thread-safe).
 */
public final class TextScorer implements AutoCloseable {
    private final TextTokenizer tokenizer;
    private final int seqLength;
    private final OrtEngine engine;
    private final GraphEval eval;

    TextScorer(TextTokenizer tokenizer, int seqLength, OrtEngine engine, GraphEval eval) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.seqLength = seqLength;
        this.engine = Objects.requireNonNull(engine, "engine");
        this.eval = Objects.requireNonNull(eval, "eval");
    }

    /**
     * One text's score.
     *
     * @param lossSum the summed token loss (negative log-likelihood, nats)
     * @param tokens  the predicted tokens; 0 for a text too short to predict any
     */
    public record Score(double lossSum, long tokens) {
        /** Mean token loss; NaN without tokens. */
        public double loss() {
            return tokens == 0 ? Double.NaN : lossSum / tokens;
        }

        /** Mean token log-likelihood, {@code -loss()}. */
        public double meanLogLikelihood() {
            return -loss();
        }
    }

    /** The tokens a text is scored as: its encoding and the end-of-text token (when the vocabulary has one). */
    public long[] tokens(String text) {
        long[] ids = tokenizer.encode(text);
        long eos = tokenizer.eosTokenId();
        if (eos < 0) {
            return ids;
        }
        long[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }

    public Score score(String text) {
        long[] tokens = tokens(text);
        int window = seqLength + 1;
        int full = tokens.length / window;
        double lossSum = 0;
        long count = 0;
        if (full > 0) {
            TrainStep.EvalResult r = eval.evaluate(batch(Arrays.copyOf(tokens, full * window), full, seqLength),
                    Map.of());
            lossSum += r.lossSum();
            count += r.tokens();
        }
        int rest = tokens.length - full * window;
        if (rest >= 2) {
            TrainStep.EvalResult r = eval.evaluate(batch(Arrays.copyOfRange(tokens, full * window, tokens.length), 1,
                    rest - 1), Map.of());
            lossSum += r.lossSum();
            count += r.tokens();
        }
        return new Score(lossSum, count);
    }

    private static Batch batch(long[] tokens, int rows, int seqLength) {
        float[] mask = new float[rows * seqLength];
        Arrays.fill(mask, 1f);
        return new Batch(rows, seqLength, tokens, mask, new DataPosition(0, 0));
    }

    @Override
    public void close() {
        try {
            eval.close();
        } finally {
            engine.close();
        }
    }
}
