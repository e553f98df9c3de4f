package dev.pet.api;

/**
 * Where things are in one transformer block, as value names of the ONNX graph. Each value has consumers only
 * inside its block, so a PET method can rewire it with {@code Graph.replaceAllUses}.
 *
 * @param index          block index
 * @param key            keys entering attention, [batch, kvHeads, keyLength, headDim] (after any past concat;
 *                       kvHeads is {@code ModelAnatomy.numKeyValueHeads})
 * @param value          values entering attention, [batch, kvHeads, keyLength, headDim]
 * @param attentionBias  additive attention bias, broadcastable to [batch, heads, queryLength, keyLength]; its last
 *                       axis runs over keys, so a prefix of P keys needs P more (zero) columns in front
 * @param attentionOutput output of the attention output projection, before the residual add
 * @param mlpOutput      output of the MLP's output projection, before the residual add
 * @param residualAfterAttention hidden state after the attention residual add
 * @param residualAfterMlp       hidden state after the MLP residual add (the block's output)
 */
public record LayerAnatomy(int index, String key, String value, String attentionBias, String attentionOutput,
        String mlpOutput, String residualAfterAttention, String residualAfterMlp) {
}
