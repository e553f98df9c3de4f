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
 * @param positionIds value holding the positions of the input tokens (int64, [batch or 1, sequence]) as the position
 *                    encoding reads them (learned position embeddings, rotary angles) and nothing else reads them;
 *                    methods that put virtual tokens before the input (prefix tuning) shift it, so the real tokens
 *                    are numbered after the virtual ones as PEFT and Hugging Face models number them. Null when the
 *                    model has no position encoding the provider could name.
 * @param logits      graph output of logits [batch, sequence, vocabulary]
 */
public record ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
        long headDim, String inputIds, String attentionMask, String positionIds, String logits) {
    public ModelAnatomy {
        layers = List.copyOf(layers);
        linears = List.copyOf(linears);
    }
}
