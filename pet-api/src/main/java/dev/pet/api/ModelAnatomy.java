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
 * @param logits      graph output of logits [batch, sequence, vocabulary]; a linear module producing it is the
 *                    output head, which {@code all-linear} leaves out
 * @param defaultTargetModules the family's {@code target_modules} when a config gives none (PEFT's per-model-type
 *                    defaults, {@code c_attn} for GPT-2, {@code q_proj, v_proj} for Llama); empty when the family
 *                    has none, which makes {@code target_modules} required
 */
public record ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
        long headDim, String inputIds, String attentionMask, String positionIds, String logits,
        List<String> defaultTargetModules) {
    public ModelAnatomy {
        layers = List.copyOf(layers);
        linears = List.copyOf(linears);
        defaultTargetModules = defaultTargetModules == null ? List.of() : List.copyOf(defaultTargetModules);
    }

    /** An anatomy without default target modules. */
    public ModelAnatomy(List<LayerAnatomy> layers, List<LinearModule> linears, long hiddenSize, long numHeads,
            long headDim, String inputIds, String attentionMask, String positionIds, String logits) {
        this(layers, linears, hiddenSize, numHeads, headDim, inputIds, attentionMask, positionIds, logits,
                List.of());
    }
}
