package dev.pet.hf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pet.api.PetException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * tokenizer.json files built here, in the two schemes Llama-family models use, run through DJL; expected ids are
 * worked out by hand from the vocabularies below.
 */
class HfTokenizerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void byteLevelBpeAppliesMergesInRankOrderAndRoundTrips() {
        // Ids 0..255 are bytes; merges add 256 = "he", 257 = "ll", 258 = "hell"; specials 259, 260.
        HfTokenizer t = HfTokenizer.fromJson(ByteLevelBpe.tokenizerJson(List.of("h e", "l l", "he ll"),
                List.of("<|begin_of_text|>", "<|end_of_text|>")), "test", null, null);
        // "hello" -> hell o; " hi" is its own pre-token: space (byte 32, spelled Ġ), h, i.
        assertEquals("Ġ", ByteLevelBpe.symbol(' '));
        assertArrayEquals(new long[] {258, 'o', ' ', 'h', 'i'}, t.encode("hello hi"));
        assertEquals(259, t.bosTokenId());
        assertEquals(260, t.eosTokenId());
        assertEquals(261, t.vocabularySize());
        String text = "naïve ☃ test\n";
        assertEquals(text, t.decode(t.encode(text)));
        assertArrayEquals(ByteLevelBpe.byteIds("☃"), t.encode("☃"));
        assertEquals("<|end_of_text|>", t.decode(new long[] {260}));
        assertThrows(PetException.class, () -> t.decode(new long[] {261}));
    }

    /** Llama 2 / TinyLlama style: "▁" marks word starts, unknown characters fall back to byte tokens <0xNN>. */
    private static byte[] sentencePieceBpe() throws Exception {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < specials.length; i++) {
            ObjectNode a = added.addObject();
            a.put("id", i);
            a.put("content", specials[i]);
            a.put("single_word", false);
            a.put("lstrip", false);
            a.put("rstrip", false);
            a.put("normalized", false);
            a.put("special", true);
        }
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "Sequence");
        ArrayNode ns = norm.putArray("normalizers");
        ns.addObject().put("type", "Prepend").put("prepend", "▁");
        ObjectNode rep = ns.addObject().put("type", "Replace");
        rep.putObject("pattern").put("String", " ");
        rep.put("content", "▁");
        root.putNull("pre_tokenizer");
        root.putNull("post_processor");
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "Sequence");
        ArrayNode ds = dec.putArray("decoders");
        ObjectNode drep = ds.addObject().put("type", "Replace");
        drep.putObject("pattern").put("String", "▁");
        drep.put("content", " ");
        ds.addObject().put("type", "ByteFallback");
        ds.addObject().put("type", "Fuse");
        ds.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", "<unk>");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        ObjectNode vocab = model.putObject("vocab");
        vocab.put("<unk>", 0).put("<s>", 1).put("</s>", 2);
        for (int b = 0; b < 256; b++) {
            vocab.put(String.format("<0x%02X>", b), 3 + b); // 3..258
        }
        String[] pieces = {"▁", "h", "i", "t", "a", "▁h", "▁hi", "a▁", "at"}; // 259..267
        for (int i = 0; i < pieces.length; i++) {
            vocab.put(pieces[i], 259 + i);
        }
        ArrayNode merges = model.putArray("merges");
        merges.add("▁ h").add("▁h i").add("a t");
        return JSON.writeValueAsBytes(root);
    }

    @Test
    void sentencePieceStyleBpeFallsBackToBytes() throws Exception {
        HfTokenizer t = HfTokenizer.fromJson(sentencePieceBpe(), "sp", null, null);
        // "▁hi▁hat▁é": merges by rank give ▁hi ▁h at ▁, and é (C3 A9) falls back to <0xC3> <0xA9>.
        assertArrayEquals(new long[] {265, 264, 267, 259, 3 + 0xC3, 3 + 0xA9}, t.encode("hi hat é"));
        assertEquals("hi hat é", t.decode(t.encode("hi hat é")));
        assertEquals(1, t.bosTokenId());
        assertEquals(2, t.eosTokenId());
    }

    @Test
    void specialTokensComeFromTheDirectoryConfigFiles() throws Exception {
        Files.write(dir.resolve("tokenizer.json"), sentencePieceBpe());
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": {\"content\": \"</s>\"}, \"eos_token\": \"<unk>\"}");
        HfTokenizer t = HfTokenizer.forDirectory(dir);
        assertEquals(2, t.bosTokenId());
        assertEquals(0, t.eosTokenId());
        // generation_config.json's ids win; a list of end ids (Llama 3 instruct) uses the first.
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [1, 2]}");
        t = HfTokenizer.forDirectory(dir);
        assertEquals(2, t.bosTokenId());
        assertEquals(1, t.eosTokenId());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<bos>\"}");
        PetException e = assertThrows(PetException.class, () -> HfTokenizer.forDirectory(dir));
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("'<bos>'"),
                e.getMessage());
    }

    @Test
    void corruptedTokenizerFilesFailWithOneLine() throws Exception {
        byte[] good = ByteLevelBpe.tokenizerJson(List.of("h e"), List.of("<|end_of_text|>"));
        Random r = new Random(7);
        for (int i = 0; i < 40; i++) {
            byte[] bad = good.clone();
            if (i % 2 == 0) {
                bad = java.util.Arrays.copyOf(bad, r.nextInt(bad.length));
            } else {
                for (int k = 0; k < 4; k++) {
                    bad[r.nextInt(bad.length)] = (byte) r.nextInt(128);
                }
            }
            try {
                HfTokenizer t = HfTokenizer.fromJson(bad, "fuzz", null, null);
                t.decode(t.encode("hello"));
            } catch (PetException e) {
                assertTrue(e.getMessage().startsWith("fuzz") && e.getMessage().lines().count() == 1,
                        e.getMessage());
            }
        }
    }
}
