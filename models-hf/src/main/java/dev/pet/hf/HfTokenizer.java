package dev.pet.hf;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face {@code tokenizer.json} run by DJL's Hugging Face tokenizers (the Rust {@code tokenizers} library,
 * whose native code ships inside DJL's jar): byte-level BPE (GPT-2, Llama 3, Qwen2), SentencePiece-style BPE with
 * byte fallback (Llama 2, TinyLlama, Mistral) and the other models the library knows. Text is encoded without
 * special tokens; the beginning/end-of-sequence ids are reported for callers that add or stop at them. DJL runs
 * offline here: no download, no telemetry.
 */
public final class HfTokenizer implements TextTokenizer {
    /** Largest {@code tokenizer.json} accepted (Llama 3's is about 9 MiB, Qwen2's about 7 MiB). */
    public static final long MAX_TOKENIZER_BYTES = 64L << 20;

    private final HuggingFaceTokenizer tokenizer;
    private final int size;
    private final long bos;
    private final long eos;
    private final String source;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int size, long bos, long eos, String source) {
        this.tokenizer = tokenizer;
        this.size = size;
        this.bos = bos;
        this.eos = eos;
        this.source = source;
    }

    /** A {@code tokenizer.json} file; special tokens as {@link #fromJson} finds them. */
    public static HfTokenizer fromFile(Path tokenizerJson) {
        return fromJson(HfJson.readBytes(tokenizerJson, MAX_TOKENIZER_BYTES), tokenizerJson.toString(), null,
                null);
    }

    /**
     * The tokenizer of a model directory: {@code tokenizer.json}, with BOS/EOS taken from
     * {@code generation_config.json} ids, else {@code tokenizer_config.json}'s {@code bos_token}/{@code eos_token},
     * else {@code config.json} ids.
     */
    public static HfTokenizer forDirectory(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new PetException(dir + ": no tokenizer.json (a Hugging Face tokenizer saved with "
                    + "save_pretrained; slow-tokenizer files alone such as tokenizer.model are not read)");
        }
        byte[] bytes = HfJson.readBytes(file, MAX_TOKENIZER_BYTES);
        JsonNode root = HfJson.parse(bytes, file.toString());
        SpecialIds ids = SpecialIds.NONE;
        for (String name : List.of("config.json", "tokenizer_config.json", "generation_config.json")) {
            Path p = dir.resolve(name);
            if (Files.isRegularFile(p)) {
                ids = ids.overriddenBy(SpecialIds.from(HfJson.readObject(p), root, p));
            }
        }
        return build(bytes, root, file.toString(), ids.bos, ids.eos);
    }

    /**
     * {@code tokenizer.json} bytes. {@code bosToken}/{@code eosToken} name the special tokens (null: look for the
     * usual ones, {@code <s>}/{@code </s>}, {@code <|begin_of_text|>}/{@code <|end_of_text|>},
     * {@code <|endoftext|>}); {@code source} names the bytes in errors.
     */
    public static HfTokenizer fromJson(byte[] tokenizerJson, String source, String bosToken, String eosToken) {
        JsonNode root = HfJson.parse(tokenizerJson, source);
        long bos = bosToken != null ? requireToken(root, bosToken, source) : firstPresent(root, "<s>",
                "<|begin_of_text|>", "<|endoftext|>");
        long eos = eosToken != null ? requireToken(root, eosToken, source) : firstPresent(root, "</s>",
                "<|end_of_text|>", "<|endoftext|>");
        return build(tokenizerJson, root, source, bos, eos);
    }

    private static HfTokenizer build(byte[] bytes, JsonNode root, String source, long bos, long eos) {
        if (!root.isObject() || !root.path("model").isObject()) {
            throw new PetException(source + ": expected a tokenizer.json object with a 'model' section, found "
                    + (root.isObject() ? "none" : root.getNodeType().toString()));
        }
        int size = vocabularySize(root, source);
        DjlOffline.configure();
        try (InputStream in = new ByteArrayInputStream(bytes)) {
            HuggingFaceTokenizer t = HuggingFaceTokenizer.newInstance(in, Map.of("addSpecialTokens", "false",
                    "truncation", "false", "padding", "false"));
            return new HfTokenizer(t, size, bos, eos, source);
        } catch (IOException | RuntimeException e) {
            String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            throw new PetException(source + ": the tokenizers library could not load it: " + msg, e);
        }
    }

    /** One past the largest id of the model vocabulary and the added tokens. */
    private static int vocabularySize(JsonNode root, String source) {
        JsonNode vocab = root.path("model").path("vocab");
        long size = 0;
        if (vocab.isObject()) {
            for (JsonNode id : vocab) {
                if (!id.canConvertToInt() || id.asInt() < 0) {
                    throw new PetException(source + ": model.vocab ids expected non-negative integers, found " + id);
                }
                size = Math.max(size, id.asLong() + 1);
            }
        } else if (vocab.isArray()) {
            size = vocab.size(); // Unigram: a list of [piece, score]
        } else {
            throw new PetException(source + ": model.vocab expected an object (BPE, WordPiece) or a list (Unigram), "
                    + "found " + vocab.getNodeType());
        }
        for (JsonNode t : root.path("added_tokens")) {
            JsonNode id = t.path("id");
            if (!id.canConvertToInt() || id.asInt() < 0) {
                throw new PetException(source + ": added_tokens ids expected non-negative integers, found " + id);
            }
            size = Math.max(size, id.asLong() + 1);
        }
        if (size == 0) {
            throw new PetException(source + ": the vocabulary is empty");
        }
        return (int) size;
    }

    /** The id of a token in the added tokens or the model vocabulary, or -1. */
    static long idOf(JsonNode root, String token) {
        for (JsonNode t : root.path("added_tokens")) {
            if (token.equals(t.path("content").asText(null))) {
                return t.path("id").asLong();
            }
        }
        JsonNode v = root.path("model").path("vocab");
        if (v.isObject() && v.has(token)) {
            return v.get(token).asLong();
        }
        return -1;
    }

    private static long requireToken(JsonNode root, String token, String source) {
        long id = idOf(root, token);
        if (id < 0) {
            throw new PetException(source + ": special token '" + token + "' is not in the vocabulary");
        }
        return id;
    }

    private static long firstPresent(JsonNode root, String... tokens) {
        for (String t : tokens) {
            long id = idOf(root, t);
            if (id >= 0) {
                return id;
            }
        }
        return -1;
    }

    @Override
    public long[] encode(String text) {
        Objects.requireNonNull(text, "text");
        return tokenizer.encode(text, false, false).getIds();
    }

    @Override
    public String decode(long[] ids) {
        for (long id : ids) {
            if (id < 0 || id >= size) {
                throw new PetException("token id " + id + " is outside the vocabulary [0, " + size + ")");
            }
        }
        return tokenizer.decode(ids, false);
    }

    @Override
    public int vocabularySize() {
        return size;
    }

    @Override
    public long eosTokenId() {
        return eos;
    }

    @Override
    public long bosTokenId() {
        return bos;
    }

    @Override
    public String toString() {
        return "Hugging Face tokenizer (DJL) from " + source + ", " + size + " tokens";
    }

    /** BOS/EOS ids found in one file; -1 where it says nothing. */
    private record SpecialIds(long bos, long eos) {
        static final SpecialIds NONE = new SpecialIds(-1, -1);

        SpecialIds overriddenBy(SpecialIds later) {
            return new SpecialIds(later.bos >= 0 ? later.bos : bos, later.eos >= 0 ? later.eos : eos);
        }

        static SpecialIds from(Map<String, Object> json, JsonNode tokenizer, Path file) {
            return new SpecialIds(id(json, "bos", tokenizer, file), id(json, "eos", tokenizer, file));
        }

        /** {@code <kind>_token_id} (an integer or a list whose first is used) or {@code <kind>_token} text. */
        private static long id(Map<String, Object> json, String kind, JsonNode tokenizer, Path file) {
            Object id = json.get(kind + "_token_id");
            if (id instanceof List<?> l && !l.isEmpty()) {
                id = l.get(0);
            }
            if (id instanceof Number n) {
                return n.longValue();
            }
            if (id != null && !(id instanceof List<?>)) {
                throw new PetException(file + ": " + kind + "_token_id expected an integer, found " + id);
            }
            Object token = json.get(kind + "_token");
            if (token instanceof Map<?, ?> m) {
                token = m.get("content");
            }
            if (token instanceof String s) {
                long found = idOf(tokenizer, s);
                if (found < 0) {
                    throw new PetException(file + ": " + kind + "_token '" + s + "' is not in tokenizer.json");
                }
                return found;
            }
            return -1;
        }
    }

    /** DJL reads these switches when its classes initialise; we never let it download or phone home. */
    private static final class DjlOffline {
        private DjlOffline() {
        }

        static synchronized void configure() {
            for (String s : List.of("OPT_OUT_TRACKING", "offline")) {
                if (System.getProperty(s) == null) {
                    System.setProperty(s, "true");
                }
            }
        }
    }
}
