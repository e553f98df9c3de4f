package dev.pet.runtime.data;

import dev.pet.api.TextTokenizer;
import dev.pet.runtime.config.DataLoaderConfig;

import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * A corpus packed into non-overlapping windows of {@code seqLength + 1} tokens: window {@code i} is tokens
 * {@code [i*(S+1), (i+1)*(S+1))} of the concatenated corpus (the MindFormers/nanoGPT convention; the tail shorter
 * than a window is dropped). Training batches take windows in file order, or in a seeded permutation per epoch when
 * {@code shuffle} is set; the last incomplete batch of an epoch is dropped.
 */
public final class PackedDataset {
    private final TokenSequence tokens;
    private final int seqLength;
    private final boolean shuffle;
    private final String description;

    public PackedDataset(TokenSequence tokens, int seqLength, boolean shuffle, String description) {
        this.tokens = Objects.requireNonNull(tokens, "tokens");
        if (seqLength < 1) {
            throw new IllegalArgumentException("seqLength must be >= 1, found " + seqLength);
        }
        this.seqLength = seqLength;
        this.shuffle = shuffle;
        this.description = Objects.requireNonNull(description, "description");
    }

    /**
     * Opens the corpus a data loader config names. Text corpora are tokenized with {@code tokenizer} into
     * {@code cache} (reused on later runs); pre-tokenized ({@code tokens}) corpora are mapped directly and need no
     * tokenizer. {@code tokenizerId} names the vocabulary, e.g. {@code gpt2/r50k_base}.
     */
    public static PackedDataset open(DataLoaderConfig config, int seqLength, TextTokenizer tokenizer,
                                     String tokenizerId, TokenCache cache) {
        Objects.requireNonNull(config, "config");
        List<java.nio.file.Path> files = Corpora.files(config.datasetDir(), config.type());
        TokenSequence tokens;
        if (config.type() == DataLoaderConfig.Type.TOKENS) {
            tokens = Corpora.pretokenized(files);
        } else {
            Objects.requireNonNull(tokenizer, "tokenizer");
            Objects.requireNonNull(tokenizerId, "tokenizerId");
            Objects.requireNonNull(cache, "cache");
            String cleaning = switch (config.type()) {
                case WIKITEXT -> WikitextCleaner.VERSION;
                case TEXT -> "text-1/chunk" + Corpora.CHUNK_CHARS;
                case JSONL -> "jsonl-1";
                case TOKENS -> throw new AssertionError();
            };
            String key = TokenCache.key(config.type().yamlName(), config.datasetDir(), files, tokenizerId, cleaning);
            tokens = cache.getOrBuild(key, config.type() == DataLoaderConfig.Type.JSONL,
                    sink -> Corpora.produce(config.type(), files, tokenizer, sink));
        }
        PackedDataset dataset = new PackedDataset(tokens, seqLength, config.shuffle(),
                config.type().yamlName() + ":" + config.datasetDir());
        if (dataset.windowCount() == 0) {
            throw new DataException(config.datasetDir() + ": " + tokens.size() + " tokens, fewer than one window of "
                    + (seqLength + 1) + " (seq_length + 1)");
        }
        return dataset;
    }

    /**
     * Refuses token ids outside the model's vocabulary before training: one scan of all tokens, naming the file and
     * offset of the first bad id (ONNX Runtime would otherwise fail mid-run on a Gather index, naming neither).
     */
    public void requireIdsBelow(long vocabSize, String modelName) {
        tokens.findIdOutside(vocabSize).ifPresent(where -> {
            throw new DataException(description + ": " + where + " is outside the vocabulary [0, " + vocabSize
                    + ") of " + modelName + "; was the data tokenized for another model?");
        });
    }

    public long tokenCount() {
        return tokens.size();
    }

    public int seqLength() {
        return seqLength;
    }

    public long windowCount() {
        return tokens.size() / (seqLength + 1);
    }

    /** Full training batches per epoch. */
    public long batchesPerEpoch(int batchSize) {
        return windowCount() / batchSize;
    }

    public TokenSequence tokens() {
        return tokens;
    }

    @Override
    public String toString() {
        return description + " (" + tokens.size() + " tokens, " + windowCount() + " windows of " + (seqLength + 1) + ")";
    }

    /** Copies window {@code window} into row {@code row} of a batch being filled. */
    void copyWindow(long window, int row, long[] batchTokens, float[] batchMask) {
        int w = seqLength + 1;
        long start = window * w;
        for (int t = 0; t < w; t++) {
            batchTokens[row * w + t] = tokens.token(start + t);
            if (t > 0) {
                batchMask[row * seqLength + t - 1] = tokens.inLoss(start + t) ? 1f : 0f;
            }
        }
    }

    /** The window order of an epoch: identity without shuffling, else a permutation seeded by (seed, epoch). */
    long[] order(long seed, int epoch) {
        long n = windowCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new DataException(description + ": " + n + " windows are more than one epoch order can hold");
        }
        long[] order = new long[(int) n];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        if (shuffle) {
            SplittableRandom random = new SplittableRandom(seed ^ (0x9E3779B97F4A7C15L * (epoch + 1L)));
            for (int i = order.length - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                long t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        return order;
    }

    /**
     * Training batches from {@code start} on, across epochs without end (the trainer stops by step count).
     * Restarting from a saved {@link BatchIterator#position()} yields the same batches as continuing.
     */
    public BatchIterator trainBatches(int batchSize, long seed, DataPosition start) {
        return new BatchIterator(this, batchSize, seed, start);
    }

    /** One pass over every window in file order; the last batch may be smaller. */
    public Iterator<Batch> evalBatches(int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, found " + batchSize);
        }
        long windows = windowCount();
        return new Iterator<>() {
            long next;
            long index;

            @Override
            public boolean hasNext() {
                return next < windows;
            }

            @Override
            public Batch next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                int b = (int) Math.min(batchSize, windows - next);
                long[] ids = new long[b * (seqLength + 1)];
                float[] mask = new float[b * seqLength];
                for (int row = 0; row < b; row++) {
                    copyWindow(next + row, row, ids, mask);
                }
                next += b;
                return new Batch(b, seqLength, ids, mask, new DataPosition(0, index++));
            }
        };
    }
}
