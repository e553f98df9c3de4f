package dev.pet.api;

import java.util.Objects;

/**
 * A linear projection of a model, where LoRA and similar methods attach.
 *
 * @param path        the module path in Hugging Face naming, e.g. {@code transformer.h.0.attn.c_attn}
 * @param weight      initializer name of the weight
 * @param bias        initializer name of the bias, or null
 * @param input       value name of the projection's input
 * @param output      value name of the projection's output (after the bias); replacing its uses changes the layer
 * @param inFeatures  input width
 * @param outFeatures output width
 * @param layer       transformer block index, or -1 for modules outside the blocks
 * @param weightInOut true when the weight is stored [in, out] (GPT-2's Conv1D), false for [out, in] (nn.Linear)
 */
public record LinearModule(String path, String weight, String bias, String input, String output, long inFeatures,
        long outFeatures, int layer, boolean weightInOut) {
    public LinearModule {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(output, "output");
    }
}
