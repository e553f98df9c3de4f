package dev.pet.gpt2;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;
import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import dev.pet.hf.ByteLevelBpe;
import dev.pet.hf.HfTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * GPT-2's byte-level BPE tokenizer. The default is JTokkit's embedded {@code r50k_base} (the GPT-2 vocabulary, no
 * download). A model directory with {@code tokenizer.json}, or {@code vocab.json} + {@code merges.txt}, is read with
 * the shared {@link HfTokenizer} (DJL's Hugging Face tokenizers, offline).
 */
public final class Gpt2Tokenizers {
    /** GPT-2's end-of-text token. */
    public static final String END_OF_TEXT = "<|endoftext|>";
    private static final long MAX_TOKENIZER_FILE = 64L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private Gpt2Tokenizers() {
    }

    /** JTokkit's {@code r50k_base}: 50257 tokens, end-of-text 50256. */
    public static TextTokenizer r50k() {
        return R50k.INSTANCE;
    }

    /**
     * The tokenizer of a model directory: {@code tokenizer.json}, else {@code vocab.json} + {@code merges.txt},
     * else {@link #r50k()}.
     */
    public static TextTokenizer forDirectory(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path tokenizerJson = dir.resolve("tokenizer.json");
        if (Files.isRegularFile(tokenizerJson)) {
            return fromTokenizerJson(tokenizerJson);
        }
        Path vocab = dir.resolve("vocab.json");
        Path merges = dir.resolve("merges.txt");
        if (Files.isRegularFile(vocab) && Files.isRegularFile(merges)) {
            return fromVocabAndMerges(vocab, merges);
        }
        if (Files.isRegularFile(vocab) || Files.isRegularFile(merges)) {
            throw new PetException(dir + ": has " + (Files.isRegularFile(vocab) ? "vocab.json" : "merges.txt")
                    + " but not " + (Files.isRegularFile(vocab) ? "merges.txt" : "vocab.json")
                    + "; a byte-level BPE tokenizer needs both");
        }
        return r50k();
    }

    /** A Hugging Face {@code tokenizer.json}, through DJL. */
    public static TextTokenizer fromTokenizerJson(Path tokenizerJson) {
        return HfTokenizer.fromFile(tokenizerJson);
    }

    /**
     * GPT-2's {@code vocab.json} (byte-level unicode token → id) and {@code merges.txt} (one merge "a b" per line,
     * after an optional {@code #version} line), turned into the equivalent {@code tokenizer.json} for DJL.
     */
    public static TextTokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) {
        JsonNode vocab;
        try {
            vocab = JSON.readTree(readLimited(vocabJson));
        } catch (IOException e) {
            throw new PetException(vocabJson + ": not valid JSON: " + e.getMessage(), e);
        }
        if (!vocab.isObject()) {
            throw new PetException(vocabJson + ": expected a JSON object of token -> id, found " + vocab.getNodeType());
        }
        for (Map.Entry<String, JsonNode> en : vocab.properties()) {
            if (!en.getValue().canConvertToInt() || en.getValue().asInt() < 0) {
                throw new PetException(vocabJson + ": token '" + en.getKey() + "' expected a non-negative integer id, "
                        + "found " + en.getValue());
            }
        }
        String text = new String(readLimited(mergesTxt), StandardCharsets.UTF_8);
        ArrayNode merges = JSON.createArrayNode();
        String[] lines = text.split("\r?\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            if (line.isEmpty() || (i == 0 && line.startsWith("#version"))) {
                continue;
            }
            String[] parts = line.split(" ");
            if (parts.length != 2) {
                throw new PetException(mergesTxt + ": line " + (i + 1) + " expected two tokens separated by one "
                        + "space, found '" + line + "'");
            }
            for (String p : parts) {
                if (!vocab.has(p)) {
                    throw new PetException(mergesTxt + ": line " + (i + 1) + " merges '" + p
                            + "', which vocab.json does not contain");
                }
            }
            merges.add(line);
        }
        byte[] bytes = ByteLevelBpe.tokenizerJson((ObjectNode) vocab, merges, vocab.has(END_OF_TEXT)
                ? Map.of(END_OF_TEXT, vocab.get(END_OF_TEXT).asInt()) : Map.of());
        return HfTokenizer.fromJson(bytes, vocabJson + " + " + mergesTxt, null, null);
    }

    private static byte[] readLimited(Path p) {
        try {
            long size = Files.size(p);
            if (size > MAX_TOKENIZER_FILE) {
                throw new PetException(p + ": " + size + " bytes is larger than the " + MAX_TOKENIZER_FILE
                        + "-byte limit for tokenizer files");
            }
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new PetException("cannot read " + p + ": " + e.getMessage(), e);
        }
    }

    /** JTokkit's r50k_base. */
    private static final class R50k implements TextTokenizer {
        static final R50k INSTANCE = new R50k();
        private final Encoding encoding = Encodings.newLazyEncodingRegistry().getEncoding(EncodingType.R50K_BASE);

        @Override
        public long[] encode(String text) {
            Objects.requireNonNull(text, "text");
            // JTokkit refuses special tokens in encode(); like Hugging Face, treat each <|endoftext|> as token 50256
            // and encode the text between them as ordinary text.
            java.util.List<Integer> out = new java.util.ArrayList<>();
            int from = 0;
            while (true) {
                int at = text.indexOf(END_OF_TEXT, from);
                String piece = text.substring(from, at < 0 ? text.length() : at);
                for (int id : encoding.encodeOrdinary(piece).toArray()) {
                    out.add(id);
                }
                if (at < 0) {
                    break;
                }
                out.add(50256);
                from = at + END_OF_TEXT.length();
            }
            return out.stream().mapToLong(Integer::longValue).toArray();
        }

        @Override
        public String decode(long[] ids) {
            IntArrayList list = new IntArrayList(ids.length);
            for (long id : ids) {
                if (id < 0 || id >= vocabularySize()) {
                    throw new PetException("token id " + id + " is outside the vocabulary [0, " + vocabularySize()
                            + ")");
                }
                list.add((int) id);
            }
            return encoding.decode(list);
        }

        @Override
        public int vocabularySize() {
            return 50257;
        }

        @Override
        public long eosTokenId() {
            return 50256;
        }

        @Override
        public String toString() {
            return "r50k_base (JTokkit)";
        }
    }
}
