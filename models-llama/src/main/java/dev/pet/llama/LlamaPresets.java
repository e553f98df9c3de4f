package dev.pet.llama;

import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import dev.pet.hf.ByteLevelBpe;
import dev.pet.hf.HfTokenizer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Presets with seeded random weights: {@code llama-tiny} and {@code qwen2-tiny} (two layers, grouped-query
 * attention) for tests and quick starts, and the real shapes of SmolLM2-135M, Qwen2.5-0.5B, TinyLlama-1.1B and
 * Llama-3.2-1B for benchmarks without downloads. No pretrained weights or vocabularies ship, so every preset
 * uses a merge-free byte-level tokenizer (ids 0-255 are bytes, 256 and 257 begin and end a text) whose ids fit in
 * every preset's vocabulary.
 */
public final class LlamaPresets {
    /** Beginning-of-text id of the preset tokenizer. */
    public static final int BOS = 256;
    /** End-of-text id of the preset tokenizer. */
    public static final int EOS = 257;
    /** Vocabulary of the preset tokenizer and of the tiny presets, so everything they generate decodes. */
    private static final int VOCAB = 258;

    private static final Map<String, LlamaConfig> PRESETS = new LinkedHashMap<>();

    static {
        RopeScaling llama3 = new RopeScaling("llama3", 32, 1, 4, 8192);
        // name, type, vocab, hidden, inner, layers, heads, kvHeads, headDim, positions, eps, theta, scaling, tied
        put("llama-tiny", "llama", VOCAB, 64, 128, 2, 4, 2, 16, 256, 1e-5, 10000, RopeScaling.NONE, false);
        put("qwen2-tiny", "qwen2", VOCAB, 64, 128, 2, 4, 2, 16, 256, 1e-6, 1000000, RopeScaling.NONE, true);
        put("smollm2-135m", "llama", 49152, 576, 1536, 30, 9, 3, 64, 8192, 1e-5, 100000, RopeScaling.NONE, true);
        put("qwen2.5-0.5b", "qwen2", 151936, 896, 4864, 24, 14, 2, 64, 32768, 1e-6, 1000000, RopeScaling.NONE,
                true);
        put("tinyllama-1.1b", "llama", 32000, 2048, 5632, 22, 32, 4, 64, 2048, 1e-5, 10000, RopeScaling.NONE,
                false);
        put("llama-3.2-1b", "llama", 128256, 2048, 8192, 16, 32, 8, 64, 131072, 1e-5, 500000, llama3, true);
        // Llama-3.1-8B: llama3 RoPE with factor 8 (3.2 uses 32), untied LM head.
        put("llama-3.1-8b", "llama", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 1e-5, 500000,
                new RopeScaling("llama3", 8, 1, 4, 8192), false);
    }

    private static void put(String name, String type, int vocab, int hidden, int inner, int layers, int heads,
            int kvHeads, int headDim, int positions, double eps, double theta, RopeScaling scaling, boolean tied) {
        PRESETS.put(name, new LlamaConfig(type, vocab, hidden, inner, layers, heads, kvHeads, headDim, positions, eps,
                theta, scaling, type.equals("qwen2"), false, false, tied, 0, 0.02, BOS, EOS));
    }

    private LlamaPresets() {
    }

    /** The preset names, lowercase. */
    public static List<String> names() {
        return List.copyOf(PRESETS.keySet());
    }

    public static boolean isPreset(String name) {
        return PRESETS.containsKey(name.toLowerCase(Locale.ROOT));
    }

    /** A preset's config; the error lists the presets. */
    public static LlamaConfig config(String name) {
        LlamaConfig c = PRESETS.get(name.toLowerCase(Locale.ROOT));
        if (c == null) {
            throw new PetException("unknown Llama preset '" + name + "'; expected one of " + names());
        }
        return c;
    }

    /** The presets' byte-level tokenizer (through the same DJL path as a model directory's tokenizer.json). */
    public static TextTokenizer tokenizer() {
        return Holder.TOKENIZER;
    }

    private static final class Holder {
        static final TextTokenizer TOKENIZER = HfTokenizer.fromJson(
                ByteLevelBpe.tokenizerJson(List.of(), List.of("<|begin_of_text|>", "<|end_of_text|>")),
                "the Llama preset tokenizer", "<|begin_of_text|>", "<|end_of_text|>");
    }
}
