package dev.pet.api;

/** Turns text into token ids and back, for a model's vocabulary. */
public interface TextTokenizer {
    long[] encode(String text);

    String decode(long[] ids);

    int vocabularySize();

    /** The end-of-text token id, or -1 when the vocabulary has none. */
    long eosTokenId();

    /** The beginning-of-sequence token id, or -1 when the vocabulary has none. */
    default long bosTokenId() {
        return -1;
    }
}
