package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JTokkit's r50k_base and DJL's Hugging Face tokenizer agree. The test derives GPT-2's vocab.json and merges.txt
 * from JTokkit's own rank table (each multi-byte token's merge is the two parts that byte-pair merging with only
 * lower ranks leaves), so no file is downloaded, and DJL loads its native library from its jar.
 */
class Gpt2TokenizersTest {
    static final List<String> TEXTS = List.of(
            "Hello, world!",
            "The quick brown fox jumps over the lazy dog.",
            "  leading spaces and   runs of    whitespace\t\ttabs\n\nnewlines  ",
            "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e10 2024-06-01",
            "Unicode: naïve café, Grüße, 日本語のテキスト, Ελληνικά, emoji 🤖🚀👍🏽",
            "Text<|endoftext|>More text after end-of-text",
            "<|endoftext|>",
            "I'm can't we'll they've you'd she's it'S",
            "code: for (int i = 0; i < n; i++) { x += a[i] * b[i]; }",
            "",
            " ",
            "\u00a0non-breaking\u2003em space\u200bzero width");

    @TempDir
    static Path dir;

    @BeforeAll
    static void writeVocabAndMerges() throws IOException {
        Map<ByteKey, Integer> ranks = loadR50kRanks();
        String[] byteToChar = byteToUnicode();
        Map<Integer, byte[]> byRank = new HashMap<>();
        ranks.forEach((k, v) -> byRank.put(v, k.bytes));
        Map<String, Integer> vocab = new LinkedHashMap<>();
        List<String> merges = new ArrayList<>();
        for (int r = 0; r < byRank.size(); r++) {
            byte[] token = byRank.get(r);
            vocab.put(render(token, byteToChar), r);
            if (token.length > 1) {
                List<byte[]> parts = bpe(token, ranks, r);
                assertEquals(2, parts.size(), "token of rank " + r + " should be the merge of two tokens");
                merges.add(render(parts.get(0), byteToChar) + " " + render(parts.get(1), byteToChar));
            }
        }
        vocab.put(Gpt2Tokenizers.END_OF_TEXT, 50256);
        assertEquals(50000, merges.size());
        new ObjectMapper().writeValue(dir.resolve("vocab.json").toFile(), vocab);
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n" + String.join("\n", merges) + "\n");
    }

    @Test
    void djlTokenizerFromVocabAndMergesMatchesJTokkit() {
        TextTokenizer jtokkit = Gpt2Tokenizers.r50k();
        TextTokenizer hf = Gpt2Tokenizers.forDirectory(dir);
        assertTrue(hf.toString().contains("DJL"), hf.toString());
        assertEquals(50257, hf.vocabularySize());
        assertEquals(50256, hf.eosTokenId());
        for (String text : TEXTS) {
            long[] expected = jtokkit.encode(text);
            assertArrayEquals(expected, hf.encode(text), "ids of '" + text + "'");
            assertEquals(text, jtokkit.decode(expected));
            assertEquals(text, hf.decode(expected));
        }
        assertArrayEquals(new long[] {50256}, jtokkit.encode("<|endoftext|>"));
    }

    @Test
    void directoryWithoutTokenizerFilesUsesR50k(@TempDir Path empty) {
        assertEquals(Gpt2Tokenizers.r50k(), Gpt2Tokenizers.forDirectory(empty));
    }

    @Test
    void rejectsVocabWithoutMergesAndMergesNamingUnknownTokens(@TempDir Path d) throws IOException {
        Files.writeString(d.resolve("vocab.json"), "{\"a\": 0, \"b\": 1}");
        PetException e = assertThrows(PetException.class, () -> Gpt2Tokenizers.forDirectory(d));
        assertTrue(e.getMessage().contains("merges.txt"), e.getMessage());
        Files.writeString(d.resolve("merges.txt"), "#version: 0.2\na c\n");
        e = assertThrows(PetException.class, () -> Gpt2Tokenizers.forDirectory(d));
        assertTrue(e.getMessage().contains("'c'") && e.getMessage().contains("line 2"), e.getMessage());
    }

    @Test
    void decodingRejectsIdsOutsideTheVocabulary() {
        PetException e = assertThrows(PetException.class, () -> Gpt2Tokenizers.r50k().decode(new long[] {50257}));
        assertTrue(e.getMessage().contains("50257"), e.getMessage());
    }

    /** Byte-pair merging as tiktoken does it, using only tokens of rank below {@code maxRank}. */
    private static List<byte[]> bpe(byte[] token, Map<ByteKey, Integer> ranks, int maxRank) {
        List<byte[]> parts = new ArrayList<>();
        for (byte b : token) {
            parts.add(new byte[] {b});
        }
        while (true) {
            int bestIdx = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer r = ranks.get(new ByteKey(concat(parts.get(i), parts.get(i + 1))));
                if (r != null && r < maxRank && r < bestRank) {
                    bestRank = r;
                    bestIdx = i;
                }
            }
            if (bestIdx < 0) {
                return parts;
            }
            parts.set(bestIdx, concat(parts.get(bestIdx), parts.remove(bestIdx + 1)));
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static Map<ByteKey, Integer> loadR50kRanks() throws IOException {
        Map<ByteKey, Integer> ranks = new HashMap<>();
        try (InputStream in = com.knuddels.jtokkit.Encodings.class.getResourceAsStream(
                "/com/knuddels/jtokkit/r50k_base.tiktoken");
                BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                String[] p = line.split(" ");
                ranks.put(new ByteKey(Base64.getDecoder().decode(p[0])), Integer.parseInt(p[1]));
            }
        }
        assertEquals(50256, ranks.size());
        return ranks;
    }

    /** GPT-2's reversible map from bytes to printable unicode characters. */
    private static String[] byteToUnicode() {
        String[] map = new String[256];
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = new String(Character.toChars(printable ? b : 256 + extra++));
        }
        return map;
    }

    private static String render(byte[] token, String[] byteToChar) {
        StringBuilder sb = new StringBuilder();
        for (byte b : token) {
            sb.append(byteToChar[b & 0xff]);
        }
        return sb.toString();
    }

    private record ByteKey(byte[] bytes) {
        @Override
        public boolean equals(Object o) {
            return o instanceof ByteKey k && java.util.Arrays.equals(bytes, k.bytes);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(bytes);
        }
    }
}
