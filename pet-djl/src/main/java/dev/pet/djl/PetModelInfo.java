package dev.pet.djl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code pet_model.json}, written by {@code pet export} beside an exported model: which model family and base model
 * the graph came from (so the family's plugin supplies the tokenizer), the positions it accepts and its
 * end-of-text token.
 *
 * @param provider     model provider id ({@code gpt2}, ...)
 * @param model        preset name or absolute model directory the export was made from
 * @param maxPositions longest sequence the exported graph accepts
 * @param eosTokenId   end-of-text token id, or -1
 * @param kvHeads      key/value heads of the cache inputs [batch, kv_heads, past, head_dim]
 * @param headDim      width of one head
 */
public record PetModelInfo(String provider, String model, long maxPositions, long eosTokenId, long kvHeads,
        long headDim) {
    public static final String FILE = "pet_model.json";

    public static PetModelInfo read(Path dir) {
        Path f = dir.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            throw new IllegalArgumentException(f + " is missing: load a directory written by pet export "
                    + "(--format merged-onnx or ort-adapter)");
        }
        try {
            if (Files.size(f) > 1 << 20) {
                throw new IllegalArgumentException(f + " is larger than 1 MiB");
            }
            JsonNode n = new ObjectMapper().readTree(f.toFile());
            String provider = text(n, "provider", f);
            String model = text(n, "model", f);
            JsonNode max = n.get("max_positions");
            JsonNode eos = n.get("eos_token_id");
            if (max == null || !max.canConvertToLong() || max.asLong() < 1) {
                throw new IllegalArgumentException(f + ": max_positions must be a positive integer");
            }
            if (eos == null || !eos.canConvertToLong()) {
                throw new IllegalArgumentException(f + ": eos_token_id must be an integer");
            }
            return new PetModelInfo(provider, model, max.asLong(), eos.asLong(), positive(n, "kv_heads", f),
                    positive(n, "head_dim", f));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + f + ": " + e.getMessage(), e);
        }
    }

    private static long positive(JsonNode n, String key, Path f) {
        JsonNode v = n.get(key);
        if (v == null || !v.canConvertToLong() || v.asLong() < 1 || v.asLong() > 1 << 20) {
            throw new IllegalArgumentException(f + ": '" + key + "' must be a positive integer");
        }
        return v.asLong();
    }

    private static String text(JsonNode n, String key, Path f) {
        JsonNode v = n == null ? null : n.get(key);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) {
            throw new IllegalArgumentException(f + ": '" + key + "' must be a non-empty string");
        }
        return v.asText();
    }
}
