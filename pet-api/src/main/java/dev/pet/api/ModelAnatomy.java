package dev.pet.api;

import java.util.List;

/**
 * A model's structure, described by its provider so that PET methods inject nodes without guessing names.
 *
 * @param layers      per-block anatomy, in order
 * @param linears     every linear projection a method can target, in graph order
 * @param hiddenSize  model width
 * @param numHeads    attention heads per block
 * @param headDim     width of one head
 * @param inputIds    graph input of token ids [batch, sequence]
 * @param attentionMask graph input of the padding mask [batch, keyLength], or null when the graph has none
 * @param logits      graph output of logits [batch, sequence, vocabulary]
 */
public record ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
        long headDim, String inputIds, String attentionMask, String logits) {
    public ModelAnatomy {
        layers = List.copyOf(layers);
        linears = List.copyOf(linears);
    }
}
