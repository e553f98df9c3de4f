package dev.pet.runtime.data;

/** A long, random-access sequence of token ids with an optional per-token loss mask, usually memory-mapped. */
public interface TokenSequence {
    long size();

    /** Token id at {@code index}, in {@code [0, size())}. */
    long token(long index);

    /** Whether the token at {@code index} counts in the loss when it is a target. */
    default boolean inLoss(long index) {
        return true;
    }
}
