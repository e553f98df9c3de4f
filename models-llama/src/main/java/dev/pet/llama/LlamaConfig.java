package dev.pet.llama;

import dev.pet.api.PetException;
import dev.pet.hf.HfJson;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The shape and numerics of a Llama-family model, bound from Hugging Face {@code config.json} keys of
 * {@code LlamaConfig}, {@code MistralConfig} and {@code Qwen2Config}.
 *
 * @param modelType             {@code llama}, {@code mistral} or {@code qwen2}
 * @param vocabSize             rows of {@code embed_tokens}
 * @param hiddenSize            model width
 * @param intermediateSize      SwiGLU MLP width
 * @param numHiddenLayers       decoder layers
 * @param numAttentionHeads     query heads
 * @param numKeyValueHeads      key/value heads (grouped-query attention); divides {@code numAttentionHeads}
 * @param headDim               width of one head ({@code head_dim}, default hidden/heads)
 * @param maxPositionEmbeddings longest sequence the model was trained for
 * @param rmsNormEps            RMSNorm epsilon
 * @param ropeTheta             RoPE base
 * @param ropeScaling           RoPE frequency scaling
 * @param attentionBias         biases on q/k/v (qwen2: always; llama: {@code attention_bias}, also on o_proj)
 * @param outputBias            bias on {@code o_proj} (llama's {@code attention_bias})
 * @param mlpBias               biases on gate/up/down ({@code mlp_bias})
 * @param tieWordEmbeddings     the LM head reuses {@code embed_tokens}
 * @param slidingWindow         mistral (and qwen2 with {@code use_sliding_window}): attention window, or 0 for none
 * @param initializerRange      standard deviation of random initialisation
 * @param bosTokenId            beginning-of-sequence id, or -1
 * @param eosTokenId            end-of-sequence id, or -1
 */
public record LlamaConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
        int numAttentionHeads, int numKeyValueHeads, int headDim, int maxPositionEmbeddings, double rmsNormEps,
        double ropeTheta, RopeScaling ropeScaling, boolean attentionBias, boolean outputBias, boolean mlpBias,
        boolean tieWordEmbeddings, int slidingWindow, double initializerRange, long bosTokenId, long eosTokenId) {

    /** The {@code model_type}s this provider builds. */
    public static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2");

    public LlamaConfig {
        Objects.requireNonNull(modelType, "modelType");
        Objects.requireNonNull(ropeScaling, "ropeScaling");
        if (!MODEL_TYPES.contains(modelType)) {
            throw new PetException("model_type '" + modelType + "' is not a Llama-family model; expected one of "
                    + MODEL_TYPES.stream().sorted().toList());
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new PetException("num_attention_heads (" + numAttentionHeads + ") must be a multiple of "
                    + "num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new PetException("head_dim expected an even number (RoPE rotates pairs), found " + headDim);
        }
        if (!(rmsNormEps > 0) || !Double.isFinite(rmsNormEps)) {
            throw new PetException("rms_norm_eps expected a positive number, found " + rmsNormEps);
        }
        if (!(ropeTheta > 0) || !Double.isFinite(ropeTheta)) {
            throw new PetException("rope_theta expected a positive number, found " + ropeTheta);
        }
        if (slidingWindow < 0) {
            throw new PetException("sliding_window expected a positive integer or null, found " + slidingWindow);
        }
        if (!(initializerRange > 0) || !Double.isFinite(initializerRange)) {
            throw new PetException("initializer_range expected a positive number, found " + initializerRange);
        }
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new PetException(key + " expected a positive integer, found " + v);
        }
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** The longest sequence this model accepts: its positions, or its sliding window when that is shorter. */
    public int maxSequenceLength() {
        return slidingWindow > 0 ? Math.min(slidingWindow, maxPositionEmbeddings) : maxPositionEmbeddings;
    }

    /** Reads {@code config.json}, with {@code overrides} replacing the file's keys. */
    public static LlamaConfig read(Path configJson, Map<String, Object> overrides) {
        Map<String, Object> m = new LinkedHashMap<>(HfJson.readObject(configJson));
        if (overrides != null) {
            m.putAll(overrides);
        }
        return fromMap(m, configJson.toString());
    }

    /**
     * Binds Hugging Face keys: {@code model_type}, {@code vocab_size}, {@code hidden_size},
     * {@code intermediate_size}, {@code num_hidden_layers} and {@code num_attention_heads} are required; the others
     * default as in Hugging Face's config classes. {@code source} names the origin in errors.
     */
    public static LlamaConfig fromMap(Map<String, ?> map, String source) {
        Objects.requireNonNull(map, "map");
        String src = source == null ? "Llama config" : source;
        Binder b = new Binder(map, src);
        String type = b.string("model_type", null);
        if (type == null) {
            throw new PetException(src + ": missing key 'model_type'; expected one of "
                    + MODEL_TYPES.stream().sorted().toList());
        }
        try {
            int hidden = b.requiredInt("hidden_size");
            int heads = b.requiredInt("num_attention_heads");
            boolean qwen2 = type.equals("qwen2");
            boolean mistral = type.equals("mistral");
            boolean llamaBias = b.bool("attention_bias", false);
            String act = b.string("hidden_act", "silu");
            if (!act.equals("silu")) {
                throw new PetException("hidden_act '" + act + "' is not supported; the SwiGLU MLP expects 'silu'");
            }
            int window = 0;
            boolean windowed = mistral || (qwen2 && b.bool("use_sliding_window", false));
            if (windowed && !(map.containsKey("sliding_window") && map.get("sliding_window") == null)) {
                window = b.optionalInt("sliding_window", mistral ? 4096 : 0);
            }
            if (!hidden(heads, hidden) && map.get("head_dim") == null) {
                throw new PetException("hidden_size (" + hidden + ") is not a multiple of num_attention_heads ("
                        + heads + ") and no head_dim is given");
            }
            return new LlamaConfig(type,
                    b.requiredInt("vocab_size"),
                    hidden,
                    b.requiredInt("intermediate_size"),
                    b.requiredInt("num_hidden_layers"),
                    heads,
                    b.optionalInt("num_key_value_heads", heads),
                    b.optionalInt("head_dim", hidden / Math.max(1, heads)),
                    b.optionalInt("max_position_embeddings", mistral ? 32768 : qwen2 ? 32768 : 2048),
                    b.number("rms_norm_eps", 1e-6),
                    b.number("rope_theta", 10000.0),
                    RopeScaling.fromMap(map.get("rope_scaling"), src),
                    qwen2 || llamaBias,
                    !qwen2 && llamaBias,
                    b.bool("mlp_bias", false),
                    b.bool("tie_word_embeddings", false),
                    window,
                    b.number("initializer_range", 0.02),
                    b.tokenId("bos_token_id"),
                    b.tokenId("eos_token_id"));
        } catch (PetException e) {
            throw e.getMessage().startsWith(src) ? e : new PetException(src + ": " + e.getMessage(), e);
        }
    }

    private static boolean hidden(int heads, int hidden) {
        return heads > 0 && hidden % heads == 0;
    }

    /** Hugging Face {@code config.json} keys for this config. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model_type", modelType);
        m.put("architectures", List.of(architecture()));
        m.put("vocab_size", vocabSize);
        m.put("hidden_size", hiddenSize);
        m.put("intermediate_size", intermediateSize);
        m.put("num_hidden_layers", numHiddenLayers);
        m.put("num_attention_heads", numAttentionHeads);
        m.put("num_key_value_heads", numKeyValueHeads);
        m.put("head_dim", headDim);
        m.put("max_position_embeddings", maxPositionEmbeddings);
        m.put("rms_norm_eps", rmsNormEps);
        m.put("rope_theta", ropeTheta);
        m.put("rope_scaling", ropeScaling.toMap());
        if (modelType.equals("llama")) {
            m.put("attention_bias", attentionBias);
        }
        m.put("mlp_bias", mlpBias);
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", tieWordEmbeddings);
        if (modelType.equals("mistral")) {
            m.put("sliding_window", slidingWindow == 0 ? null : slidingWindow);
        } else if (modelType.equals("qwen2")) {
            m.put("use_sliding_window", slidingWindow > 0);
            if (slidingWindow > 0) {
                m.put("sliding_window", slidingWindow);
            }
        }
        m.put("initializer_range", initializerRange);
        if (bosTokenId >= 0) {
            m.put("bos_token_id", bosTokenId);
        }
        if (eosTokenId >= 0) {
            m.put("eos_token_id", eosTokenId);
        }
        return m;
    }

    /** The Hugging Face class name: {@code LlamaForCausalLM}, {@code MistralForCausalLM}, {@code Qwen2ForCausalLM}. */
    public String architecture() {
        return switch (modelType) {
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            default -> "LlamaForCausalLM";
        };
    }

    /** This config as pretty-printed {@code config.json} text. */
    public String toJson() {
        return HfJson.write(toMap());
    }

    /** Keys a caller may override ({@code ModelRequest.overrides}); others are rejected by the provider. */
    static List<String> overridableKeys() {
        return new ArrayList<>(List.of("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
                "rope_theta", "rope_scaling", "attention_bias", "mlp_bias", "tie_word_embeddings", "sliding_window",
                "use_sliding_window", "initializer_range", "bos_token_id", "eos_token_id", "hidden_act"));
    }

    /** Converts values, naming the key and what was expected on failure. */
    private record Binder(Map<String, ?> map, String source) {
        int requiredInt(String key) {
            if (map.get(key) == null) {
                throw new PetException("missing key '" + key + "'; expected a positive integer");
            }
            return optionalInt(key, 0);
        }

        int optionalInt(String key, int d) {
            Object v = map.get(key);
            if (v == null) {
                return d;
            }
            if (v instanceof Number n) {
                double x = n.doubleValue();
                if (x == Math.rint(x) && Math.abs(x) <= Integer.MAX_VALUE) {
                    return (int) x;
                }
            }
            throw new PetException("key '" + key + "' expected an integer, found " + describe(v));
        }

        long tokenId(String key) {
            Object v = map.get(key);
            if (v instanceof List<?> l && !l.isEmpty()) {
                v = l.get(0); // Llama 3 instruct lists several; the first is the canonical one
            }
            if (v == null || v instanceof List<?>) {
                return -1;
            }
            if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && n.longValue() >= 0) {
                return n.longValue();
            }
            throw new PetException("key '" + key + "' expected a non-negative integer, found " + describe(v));
        }

        double number(String key, double d) {
            Object v = map.get(key);
            if (v == null) {
                return d;
            }
            if (v instanceof Number n) {
                return n.doubleValue();
            }
            throw new PetException("key '" + key + "' expected a number, found " + describe(v));
        }

        boolean bool(String key, boolean d) {
            Object v = map.get(key);
            if (v == null) {
                return d;
            }
            if (v instanceof Boolean x) {
                return x;
            }
            throw new PetException("key '" + key + "' expected true or false, found " + describe(v));
        }

        String string(String key, String d) {
            Object v = map.get(key);
            if (v == null) {
                return d;
            }
            if (v instanceof String s) {
                return s.toLowerCase(Locale.ROOT);
            }
            throw new PetException("key '" + key + "' expected a string, found " + describe(v));
        }

        private static String describe(Object v) {
            return v instanceof String s ? "\"" + s + "\"" : v + " (" + v.getClass().getSimpleName() + ")";
        }
    }
}
