package dev.pet.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pet.api.PetException;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes byte-level BPE {@code tokenizer.json} files (the GPT-2 / Llama 3 / Qwen2 scheme: every byte is a symbol,
 * spelled with GPT-2's printable byte alphabet). Presets use the merge-free form, whose 256 byte tokens cover any
 * text; tests add merges.
 */
public final class ByteLevelBpe {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ByteLevelBpe() {
    }

    /** GPT-2's {@code bytes_to_unicode}: printable bytes stand for themselves, the rest map above U+0100. */
    public static String symbol(int b) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            return String.valueOf((char) b);
        }
        int n = 0;
        for (int i = 0; i < b; i++) {
            if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) {
                n++;
            }
        }
        return String.valueOf((char) (256 + n));
    }

    /**
     * A {@code tokenizer.json}: ids 0..255 are the bytes, then one token per merge ({@code "a b"} yields
     * {@code "ab"}) in order, then the special tokens as added tokens.
     */
    public static byte[] tokenizerJson(List<String> merges, List<String> specialTokens) {
        ObjectNode vocab = JSON.createObjectNode();
        for (int b = 0; b < 256; b++) {
            vocab.put(symbol(b), b);
        }
        ArrayNode mergeArray = JSON.createArrayNode();
        for (String m : merges) {
            String[] parts = m.split(" ");
            if (parts.length != 2 || !vocab.has(parts[0]) || !vocab.has(parts[1])) {
                throw new PetException("byte-level BPE: merge '" + m + "' must join two known tokens");
            }
            mergeArray.add(m);
            vocab.put(parts[0] + parts[1], vocab.size());
        }
        Map<String, Integer> special = new LinkedHashMap<>();
        for (String s : specialTokens) {
            special.put(s, vocab.size() + special.size());
        }
        return tokenizerJson(vocab, mergeArray, special);
    }

    /**
     * A {@code tokenizer.json} over a given vocabulary (token -> id), merges ({@code "a b"} each) and special tokens
     * (token -> id), laid out as Hugging Face writes GPT-2's: byte-level pre-tokenizer, post-processor and decoder,
     * no normalizer.
     */
    public static byte[] tokenizerJson(ObjectNode vocab, ArrayNode merges, Map<String, Integer> specialTokens) {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        specialTokens.forEach((content, id) -> {
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", content);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        });
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(false, true));
        root.set("post_processor", byteLevel(true, false));
        root.set("decoder", byteLevel(true, true));
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.set("vocab", vocab);
        model.set("merges", merges);
        try {
            return JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new PetException("cannot write tokenizer.json: " + e.getMessage(), e);
        }
    }

    private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        ObjectNode n = JSON.createObjectNode();
        n.put("type", "ByteLevel");
        n.put("add_prefix_space", addPrefixSpace);
        n.put("trim_offsets", trimOffsets);
        n.put("use_regex", true);
        return n;
    }

    /** Ids of the byte tokens of UTF-8 text with no merges applied (what the merge-free tokenizer yields). */
    public static long[] byteIds(String text) {
        byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        long[] ids = new long[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }
}
