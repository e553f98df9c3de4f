package dev.pet.onnx.optim;

import java.util.Objects;

/**
 * The language-model head and causal-LM loss computed over row chunks (see {@link CausalLmLoss}): the rows of the
 * final hidden state are split into {@code count} chunks, and the nodes from {@code hidden} to the logits (final
 * norm, output projection, a LoRA branch on it) run once per chunk, each followed by its tokens' loss. Only one
 * chunk's logits [rows/count, V] then need to be alive at once instead of several B·S×V tensors.
 *
 * @param hidden the value entering the head: the last transformer block's output
 * @param count  number of chunks; 1 is the unchunked graph
 */
public record LossChunks(String hidden, int count) {
    /** Bytes of one chunk's logits that {@link #countFor} aims at. */
    public static final long TARGET_BYTES = 64L << 20;

    public LossChunks {
        Objects.requireNonNull(hidden, "hidden");
        if (count < 1) {
            throw new IllegalArgumentException("loss chunks: count must be at least 1, got " + count);
        }
    }

    /**
     * Chunks for {@code rows} rows of a {@code vocab}-wide head with {@code elementBytes}-byte logits: enough that
     * one chunk's logits stay within {@link #TARGET_BYTES} (at least 1, at most one per row). Each chunk costs a few
     * small nodes and a Gemm of its rows, so a chunk of 64 MiB keeps the matmuls large.
     */
    public static int countFor(long rows, long vocab, int elementBytes) {
        if (rows < 1 || vocab < 1 || elementBytes < 1) {
            throw new IllegalArgumentException("loss chunks: rows, vocabulary and element size must be positive, got "
                    + rows + ", " + vocab + ", " + elementBytes);
        }
        long bytes = Math.multiplyExact(Math.multiplyExact(rows, vocab), (long) elementBytes);
        long k = (bytes + TARGET_BYTES - 1) / TARGET_BYTES;
        return (int) Math.max(1, Math.min(k, Math.min(rows, 1024)));
    }
}
