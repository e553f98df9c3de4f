package dev.pet.onnx;

/**
 * Input and output names of causal-LM graphs, as Hugging Face Optimum exports them: {@code input_ids},
 * {@code attention_mask}, {@code position_ids} and {@code past_key_values.{i}.key/value} [batch, kvHeads, past,
 * headDim] in; {@code logits} and {@code present.{i}.key/value} out. Every model family builds its graphs with
 * these names so one generator and one exporter serve them all. The one definition lives here, in the module
 * that the model families (through {@code pet-api}), the importer and the engine's generator all reach.
 */
public final class CausalLmNames {
    public static final String INPUT_IDS = "input_ids";
    public static final String ATTENTION_MASK = "attention_mask";
    public static final String POSITION_IDS = "position_ids";
    public static final String LOGITS = "logits";

    /** Marks the branch of an Optimum {@code decoder_model_merged.onnx}: true runs the with-past decoder. */
    public static final String USE_CACHE_BRANCH = "use_cache_branch";

    private CausalLmNames() {
    }

    public static String pastKey(int layer) {
        return "past_key_values." + layer + ".key";
    }

    public static String pastValue(int layer) {
        return "past_key_values." + layer + ".value";
    }

    public static String presentKey(int layer) {
        return "present." + layer + ".key";
    }

    public static String presentValue(int layer) {
        return "present." + layer + ".value";
    }
}
