package dev.pet.runtime.data;

/** A long, random-access sequence of token ids with an optional per-token loss mask, usually memory-mapped. */
public interface TokenSequence {
    long size();

    /** Token id at {@code index}, in {@code [0, size())}. */
    long token(long index);

    /**
     * The first token id that is negative or not below {@code limit}, described with where it is (file and byte
     * offset where the sequence knows them), or empty when every id is in {@code [0, limit)}. Reads every token.
     */
    default java.util.Optional<String> findIdOutside(long limit) {
        for (long i = 0, n = size(); i < n; i++) {
            long id = token(i);
            if (id < 0 || id >= limit) {
                return java.util.Optional.of("token id " + id + " at index " + i);
            }
        }
        return java.util.Optional.empty();
    }

    /** Whether the token at {@code index} counts in the loss when it is a target. */
    default boolean inLoss(long index) {
        return true;
    }
}
