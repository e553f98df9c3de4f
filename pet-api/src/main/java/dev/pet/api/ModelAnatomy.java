package dev.pet.api;

import java.util.List;

/**
 * A model's structure, described by its provider so that PET methods inject nodes without guessing names.
 *
 * @param layers      per-block anatomy, in order
 * @param linears     every linear projection a method can target, in graph order
 * @param hiddenSize  model width
 * @param numHeads    attention (query) heads per block
 * @param headDim     width of one head
 * @param inputIds    graph input of token ids [batch, sequence]
 * @param attentionMask graph input of the padding mask [batch, keyLength], or null when the graph has none
 * @param logits      graph output of logits [batch, sequence, vocabulary]
 * @param numKeyValueHeads key/value heads per block (fewer than {@code numHeads} with grouped-query attention);
 *                    the layers' keys and values have this many heads
 * @param positionIds value of the int64 positions [batch or 1, sequence] that drive the position embeddings
 *                    (RoPE angles, learned position rows), read only by them so a method can renumber positions;
 *                    null when the provider does not expose them
 */
public record ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
        long headDim, String inputIds, String attentionMask, String logits, long numKeyValueHeads,
        String positionIds) {
    public ModelAnatomy {
        layers = List.copyOf(layers);
        linears = List.copyOf(linears);
        if (numKeyValueHeads <= 0 || numHeads % numKeyValueHeads != 0) {
            throw new PetException("model anatomy: numKeyValueHeads (" + numKeyValueHeads + ") must divide numHeads ("
                    + numHeads + ")");
        }
    }

    /** Multi-head attention (as many key/value heads as query heads), positions not exposed. */
    public ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
            long headDim, String inputIds, String attentionMask, String logits) {
        this(layers, linears, hiddenSize, numHeads, headDim, inputIds, attentionMask, logits, numHeads, null);
    }
}
