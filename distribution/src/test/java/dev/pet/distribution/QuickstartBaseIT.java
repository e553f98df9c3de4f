package dev.pet.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.TextTokenizer;
import dev.pet.gpt2.Gpt2Tokenizers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tokenizer half of {@link QuickstartBase}, and the shipped base model's files agreeing with each other. */
class QuickstartBaseIT {
    @TempDir
    Path tmp;

    @Test
    void aLearnedBpeRoundTripsTextThroughTheRuntimesTokenizerLoader() throws Exception {
        String text = "The lamp was lit at dusk. The lamp was lit at dawn. Über café, naïve — 42 ships!\n\n\tend";
        QuickstartBase.Bpe bpe = QuickstartBase.trainBpe(text.repeat(3), 20);
        assertEquals(20, bpe.merges().size());
        for (String merge : bpe.merges()) {
            assertTrue(merge.matches("[^ ]+ [^ ]+"), "a merge is 'left right' in byte-level symbols: " + merge);
        }
        QuickstartBase.writeTokenizer(bpe, tmp);
        TextTokenizer tokenizer = Gpt2Tokenizers.forDirectory(tmp);
        assertEquals(256 + 20 + 1, tokenizer.vocabularySize());
        assertEquals(256 + 20, tokenizer.eosTokenId());
        long[] ids = tokenizer.encode(text);
        assertEquals(text, tokenizer.decode(ids), "byte-level BPE is lossless, accents and tabs included");
        assertTrue(ids.length < text.getBytes(StandardCharsets.UTF_8).length, "merges shorten the sequence");
        // Deterministic: the same text gives the same merges.
        assertEquals(bpe, QuickstartBase.trainBpe(text.repeat(3), 20));
    }

    @Test
    void theShippedBaseModelsConfigMatchesItsTokenizer() throws Exception {
        Path home = Path.of(System.getProperty("pet.home"));
        Path base = home.resolve("models/keeper-base");
        JsonNode config = new ObjectMapper().readTree(base.resolve("config.json").toFile());
        TextTokenizer tokenizer = Gpt2Tokenizers.forDirectory(base);
        assertEquals(tokenizer.vocabularySize(), config.get("vocab_size").asInt());
        assertEquals(tokenizer.eosTokenId(), config.get("eos_token_id").asLong());
        String lighthouse = Files.readString(home.resolve("data/lighthouse.txt"));
        assertEquals(lighthouse, tokenizer.decode(tokenizer.encode(lighthouse)));
        assertTrue(Files.size(base.resolve("model.safetensors")) < 5_000_000, "a few MB");
    }
}
