package dev.pet.gpt2;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.MemoryBudget;
import dev.pet.api.PetException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The shape and numerics of a GPT-2 model, bound from Hugging Face {@code GPT2Config} keys ({@code vocab_size},
 * {@code n_positions}, {@code n_embd}, {@code n_layer}, {@code n_head}, {@code n_inner}, ...), their Hugging Face
 * aliases ({@code hidden_size}, {@code num_hidden_layers}, ...) or the MindFormers names ({@code hidden_size},
 * {@code num_layers}, {@code num_heads}, {@code seq_length}).
 *
 * @param vocabSize          vocabulary size (rows of {@code wte})
 * @param nPositions         longest sequence (rows of {@code wpe})
 * @param nEmbd              model width
 * @param nLayer             transformer blocks
 * @param nHead              attention heads; divides {@code nEmbd}
 * @param nInner             MLP width (Hugging Face's {@code n_inner}, default 4·{@code nEmbd})
 * @param layerNormEpsilon   LayerNorm epsilon
 * @param activationFunction {@code gelu_new} (also {@code gelu_pytorch_tanh}, {@code gelu_fast}), {@code gelu}
 *                           or {@code relu}
 * @param initializerRange   standard deviation of the random initialisation
 * @param scaleAttnWeights   divide attention scores by √headDim
 * @param scaleAttnByInverseLayerIdx additionally divide layer i's scores by i+1
 * @param bosTokenId         beginning-of-text token id
 * @param eosTokenId         end-of-text token id
 */
public record Gpt2Config(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, int nInner,
        double layerNormEpsilon, String activationFunction, double initializerRange, boolean scaleAttnWeights,
        boolean scaleAttnByInverseLayerIdx, int bosTokenId, int eosTokenId) {

    /** Activation names accepted in {@code activation_function}. */
    public static final Set<String> ACTIVATIONS = Set.of("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu",
            "relu");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Canonical key and the other names it may appear under, in the order they are looked up. */
    private static final Map<String, List<String>> ALIASES = Map.of(
            "n_embd", List.of("n_embd", "hidden_size"),
            "n_layer", List.of("n_layer", "num_hidden_layers", "num_layers"),
            "n_head", List.of("n_head", "num_attention_heads", "num_heads"),
            "n_positions", List.of("n_positions", "max_position_embeddings", "seq_length"),
            "n_inner", List.of("n_inner", "intermediate_size", "ffn_hidden_size"),
            "layer_norm_epsilon", List.of("layer_norm_epsilon", "layernorm_epsilon", "layer_norm_eps"),
            "activation_function", List.of("activation_function", "hidden_act"));

    public Gpt2Config {
        positive("vocab_size", vocabSize);
        positive("n_positions", nPositions);
        positive("n_embd", nEmbd);
        positive("n_layer", nLayer);
        positive("n_head", nHead);
        positive("n_inner", nInner);
        if (nEmbd % nHead != 0) {
            throw new PetException("GPT-2 config: n_embd (" + nEmbd + ") must be divisible by n_head (" + nHead
                    + ")");
        }
        if (!(layerNormEpsilon > 0) || !Double.isFinite(layerNormEpsilon)) {
            throw new PetException("GPT-2 config: layer_norm_epsilon expected a positive number, found "
                    + layerNormEpsilon);
        }
        Objects.requireNonNull(activationFunction, "activationFunction");
        if (!ACTIVATIONS.contains(activationFunction)) {
            throw new PetException("GPT-2 config: activation_function expected one of " + ACTIVATIONS
                    + ", found '" + activationFunction + "'");
        }
        if (!(initializerRange > 0) || !Double.isFinite(initializerRange)) {
            throw new PetException("GPT-2 config: initializer_range expected a positive number, found "
                    + initializerRange);
        }
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new PetException("GPT-2 config: " + key + " expected a positive integer, found " + v);
        }
    }

    /** A config with Hugging Face defaults for everything but the shape. */
    public static Gpt2Config of(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, 4 * nEmbd, 1e-5, "gelu_new", 0.02, true,
                false, 50256, 50256);
    }

    /** Width of one attention head. */
    public int headDim() {
        return nEmbd / nHead;
    }

    /** The preset names: {@code gpt2}, {@code gpt2-medium}, {@code gpt2-large}, {@code gpt2-xl}, ... */
    public static List<String> presetNames() {
        return List.of("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2", "gpt2-tiny");
    }

    /**
     * The shape of a published GPT-2 (weights come from a directory) or {@code gpt2-tiny}: 2 blocks, width 64,
     * 4 heads, 128 positions and the full 50257-token vocabulary, for tests and the quickstart.
     */
    public static Gpt2Config preset(String name) {
        Objects.requireNonNull(name, "name");
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "gpt2" -> of(50257, 1024, 768, 12, 12);
            case "gpt2-medium" -> of(50257, 1024, 1024, 24, 16);
            case "gpt2-large" -> of(50257, 1024, 1280, 36, 20);
            case "gpt2-xl" -> of(50257, 1024, 1600, 48, 25);
            case "distilgpt2" -> of(50257, 1024, 768, 6, 12);
            case "gpt2-tiny" -> of(50257, 128, 64, 2, 4);
            default -> throw new PetException("unknown GPT-2 preset '" + name + "'; expected one of "
                    + presetNames());
        };
    }

    /** Reads {@code config.json}; errors name the file and the key. */
    public static Gpt2Config read(Path configJson) {
        return read(configJson, Map.of());
    }

    /** Reads {@code config.json}, with {@code overrides} replacing the file's keys. */
    public static Gpt2Config read(Path configJson, Map<String, Object> overrides) {
        Objects.requireNonNull(configJson, "configJson");
        Map<String, Object> map;
        try {
            if (Files.size(configJson) > 16L << 20) {
                throw new PetException(configJson + ": a config.json larger than 16 MiB is not a GPT-2 config");
            }
            map = JSON.readValue(configJson.toFile(), JSON.getTypeFactory().constructMapType(
                    LinkedHashMap.class, String.class, Object.class));
        } catch (JsonProcessingException e) {
            throw new PetException(configJson + ": not a JSON object: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new PetException("cannot read " + configJson + ": " + e.getMessage(), e);
        }
        Map<String, Object> merged = new LinkedHashMap<>(map);
        if (overrides != null) {
            merged.putAll(overrides);
        }
        return fromMap(merged, configJson.toString());
    }

    /**
     * Binds plain keys (as parsed from JSON) to a config. Shape keys ({@code vocab_size}, {@code n_embd},
     * {@code n_layer}, {@code n_head}, {@code n_positions} or their aliases) are required; the others default as
     * in Hugging Face's {@code GPT2Config}. {@code source} names the origin in error messages.
     */
    public static Gpt2Config fromMap(Map<String, ?> map, String source) {
        Objects.requireNonNull(map, "map");
        String src = source == null ? "GPT-2 config" : source;
        Binder b = new Binder(map, src);
        int nEmbd = b.requiredInt("n_embd");
        Integer nInner = b.optionalInt("n_inner");
        try {
            return bind(b, nEmbd, nInner);
        } catch (PetException e) {
            if (!e.getMessage().startsWith("GPT-2 config: ")) {
                throw e;
            }
            throw new PetException(src + ": " + e.getMessage().substring("GPT-2 config: ".length()), e);
        }
    }

    private static Gpt2Config bind(Binder b, int nEmbd, Integer nInner) {
        return new Gpt2Config(
                b.requiredInt("vocab_size"),
                b.requiredInt("n_positions"),
                nEmbd,
                b.requiredInt("n_layer"),
                b.requiredInt("n_head"),
                nInner == null ? defaultInner(nEmbd) : nInner,
                b.optionalDouble("layer_norm_epsilon", 1e-5),
                b.optionalString("activation_function", "gelu_new"),
                b.optionalDouble("initializer_range", 0.02),
                b.optionalBoolean("scale_attn_weights", true),
                b.optionalBoolean("scale_attn_by_inverse_layer_idx", false),
                orDefault(b.optionalInt("bos_token_id"), 50256),
                orDefault(b.optionalInt("eos_token_id"), 50256));
    }

    /** 4·n_embd, Hugging Face's default n_inner, refused when it does not fit a tensor dimension. */
    private static int defaultInner(int nEmbd) {
        if (4L * nEmbd > Integer.MAX_VALUE) {
            throw new PetException("GPT-2 config: n_embd " + nEmbd + " is too large: the MLP width n_inner = "
                    + "4·n_embd = " + 4L * nEmbd + " exceeds the largest tensor dimension " + Integer.MAX_VALUE);
        }
        return 4 * nEmbd;
    }

    /**
     * Parameters of the model (token and position embeddings, blocks, final norm; the LM head is tied), in
     * saturating arithmetic so absurd configs give a huge number instead of an overflow.
     */
    public long parameterCount() {
        return MemoryBudget.add(MemoryBudget.multiply(nLayer, parametersPerLayer()),
                MemoryBudget.multiply((long) vocabSize + nPositions + 2, nEmbd));
    }

    /** Parameters of one transformer block: two norms, attention (qkv + proj) and the MLP. */
    public long parametersPerLayer() {
        long e = nEmbd;
        long attention = MemoryBudget.add(MemoryBudget.multiply(e, 3 * e + 3), MemoryBudget.multiply(e, e + 1));
        long mlp = MemoryBudget.add(MemoryBudget.multiply(e + 1, nInner), MemoryBudget.multiply(nInner + 1L, e));
        return MemoryBudget.add(MemoryBudget.add(attention, mlp), 4 * e);
    }

    private static int orDefault(Integer v, int d) {
        return v == null ? d : v;
    }

    /** Hugging Face {@code config.json} keys for this config. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model_type", "gpt2");
        m.put("architectures", List.of("GPT2LMHeadModel"));
        m.put("vocab_size", vocabSize);
        m.put("n_positions", nPositions);
        m.put("n_ctx", nPositions);
        m.put("n_embd", nEmbd);
        m.put("n_layer", nLayer);
        m.put("n_head", nHead);
        m.put("n_inner", nInner);
        m.put("layer_norm_epsilon", layerNormEpsilon);
        m.put("activation_function", activationFunction);
        m.put("initializer_range", initializerRange);
        m.put("scale_attn_weights", scaleAttnWeights);
        m.put("scale_attn_by_inverse_layer_idx", scaleAttnByInverseLayerIdx);
        m.put("bos_token_id", bosTokenId);
        m.put("eos_token_id", eosTokenId);
        m.put("tie_word_embeddings", true);
        return m;
    }

    /** This config as pretty-printed {@code config.json} text. */
    public String toJson() {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toMap());
        } catch (JsonProcessingException e) {
            throw new PetException("cannot write GPT-2 config as JSON", e);
        }
    }

    /** Looks keys up under their aliases and converts values, naming the key on failure. */
    private static final class Binder {
        private final Map<String, ?> map;
        private final String source;

        Binder(Map<String, ?> map, String source) {
            this.map = map;
            this.source = source;
        }

        /** The value under the canonical key or an alias; fails when two names give different values. */
        private Object lookup(String key) {
            List<String> names = ALIASES.getOrDefault(key, List.of(key));
            String foundName = null;
            Object found = null;
            for (String n : names) {
                Object v = map.get(n);
                if (v == null) {
                    continue;
                }
                if (found != null && !sameNumberOrValue(found, v)) {
                    throw new PetException(source + ": '" + foundName + "' (" + found + ") and '" + n + "' (" + v
                            + ") both set " + key + " but disagree");
                }
                if (found == null) {
                    found = v;
                    foundName = n;
                }
            }
            return found;
        }

        private static boolean sameNumberOrValue(Object a, Object b) {
            if (a instanceof Number x && b instanceof Number y) {
                return x.doubleValue() == y.doubleValue();
            }
            return a.equals(b);
        }

        private String names(String key) {
            List<String> names = ALIASES.getOrDefault(key, List.of(key));
            return names.size() == 1 ? "'" + key + "'" : "'" + key + "' (or " + String.join(", ",
                    names.subList(1, names.size())) + ")";
        }

        int requiredInt(String key) {
            Integer v = optionalInt(key);
            if (v == null) {
                throw new PetException(source + ": missing key " + names(key) + "; expected a positive integer, "
                        + "found nothing");
            }
            return v;
        }

        Integer optionalInt(String key) {
            Object v = lookup(key);
            if (v == null) {
                return null;
            }
            if (v instanceof Number n) {
                double d = n.doubleValue();
                if (d == Math.rint(d) && Math.abs(d) <= Integer.MAX_VALUE) {
                    return (int) d;
                }
            }
            if (v instanceof List<?> l && key.endsWith("_token_id") && !l.isEmpty() && l.get(0) instanceof Number n) {
                return n.intValue();
            }
            throw new PetException(source + ": key " + names(key) + " expected an integer, found "
                    + describe(v));
        }

        double optionalDouble(String key, double d) {
            Object v = lookup(key);
            if (v == null) {
                return d;
            }
            if (v instanceof Number n) {
                return n.doubleValue();
            }
            throw new PetException(source + ": key " + names(key) + " expected a number, found " + describe(v));
        }

        String optionalString(String key, String d) {
            Object v = lookup(key);
            if (v == null) {
                return d;
            }
            if (v instanceof String s) {
                return s;
            }
            throw new PetException(source + ": key " + names(key) + " expected a string, found " + describe(v));
        }

        boolean optionalBoolean(String key, boolean d) {
            Object v = lookup(key);
            if (v == null) {
                return d;
            }
            if (v instanceof Boolean bool) {
                return bool;
            }
            throw new PetException(source + ": key " + names(key) + " expected true or false, found "
                    + describe(v));
        }

        private static String describe(Object v) {
            return v instanceof String s ? "\"" + s + "\"" : v + " (" + v.getClass().getSimpleName() + ")";
        }
    }

    /** True when both names bind the same config field (e.g. {@code n_embd} and {@code hidden_size}). */
    static boolean sameKey(String a, String b) {
        if (a.equals(b)) {
            return true;
        }
        for (List<String> names : ALIASES.values()) {
            if (names.contains(a) && names.contains(b)) {
                return true;
            }
        }
        return a.equals("n_ctx") && ALIASES.get("n_positions").contains(b);
    }

    /** Keys a caller may set in {@code ModelRequest.overrides}; others are rejected by the provider. */
    static List<String> knownKeys() {
        List<String> keys = new ArrayList<>(List.of("vocab_size", "initializer_range", "scale_attn_weights",
                "scale_attn_by_inverse_layer_idx", "bos_token_id", "eos_token_id"));
        ALIASES.values().forEach(keys::addAll);
        return keys;
    }
}
