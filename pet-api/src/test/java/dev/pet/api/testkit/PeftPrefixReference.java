package dev.pet.api.testkit;

/**
 * What PEFT + transformers compute for a {@code PREFIX_TUNING} adapter on one model family, written independently in
 * float64 by the family's tests (plain loops; nothing shared with the plugins or the graph builders). PEFT turns
 * {@code prompt_embeddings} [P, layers·2·kvHeads·headDim] into {@code past_key_values}: view [P, layers·2, kvHeads,
 * headDim], permute to [layers·2, kvHeads, P, headDim], split in pairs, so layer l's prefix keys are slot 2l and its
 * values slot 2l+1 (per key/value head with grouped-query attention). It drops {@code position_ids} and prepends P
 * ones to the attention mask; the model then numbers the real tokens from the cache length (positions P..P+T-1:
 * learned positions or rotary angles), while the prefix keys carry no position of their own and no causal
 * restriction.
 */
public interface PeftPrefixReference {
    /**
     * Logits [T][vocab] of one row.
     *
     * @param table         prompt_embeddings [P, layers·2·kvHeads·headDim], row-major
     * @param virtualTokens P
     * @param ids           the real tokens
     * @param mask          the real tokens' attention mask (null: all ones); the prefix is always attended
     * @param firstPosition position of the first real token: P for PEFT (0 shows what a positions-from-0 model does)
     */
    double[][] logits(float[] table, int virtualTokens, long[] ids, long[] mask, int firstPosition);

    /**
     * One prefix element: {@code prompt_embeddings[row, (slot·kvHeads + head)·headDim + d]}, PEFT's view/permute.
     *
     * @param slot 2·layer for keys, 2·layer+1 for values
     */
    static double prefix(float[] table, int virtualTokens, int row, int slot, int head, int d, int kvHeads,
            int headDim) {
        long width = (long) table.length / virtualTokens;
        return table[(int) (row * width + ((long) slot * kvHeads + head) * headDim + d)];
    }

    /** All rows flattened, for comparison with a graph's [1, T, vocab] logits. */
    static double[] flatten(double[][] rows) {
        double[] out = new double[rows.length * rows[0].length];
        for (int t = 0; t < rows.length; t++) {
            System.arraycopy(rows[t], 0, out, t * rows[t].length, rows[t].length);
        }
        return out;
    }
}
