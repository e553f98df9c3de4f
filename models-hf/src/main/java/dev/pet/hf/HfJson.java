package dev.pet.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** Reads the small JSON files of a Hugging Face model directory, size-limited, with errors that name the file. */
public final class HfJson {
    /** Largest config-like JSON file accepted ({@code config.json}, {@code tokenizer_config.json}, indexes). */
    public static final long MAX_CONFIG_BYTES = 16L << 20;

    private static final ObjectMapper JSON = new ObjectMapper();

    private HfJson() {
    }

    /** The file's top-level JSON object as plain maps, lists, strings, numbers and booleans. */
    public static Map<String, Object> readObject(Path file) {
        JsonNode node = readTree(file, MAX_CONFIG_BYTES);
        if (!node.isObject()) {
            throw new PetException(file + ": expected a JSON object, found " + node.getNodeType());
        }
        return JSON.convertValue(node, JSON.getTypeFactory().constructMapType(LinkedHashMap.class, String.class,
                Object.class));
    }

    /** The file parsed as JSON, refusing files larger than {@code limit} bytes before reading them. */
    public static JsonNode readTree(Path file, long limit) {
        return parse(readBytes(file, limit), file.toString());
    }

    /** Bytes parsed as JSON; {@code source} names them in errors. */
    public static JsonNode parse(byte[] bytes, String source) {
        try {
            JsonNode n = JSON.readTree(bytes);
            if (n == null || n.isMissingNode()) {
                throw new PetException(source + ": empty file, expected JSON");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw new PetException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new PetException(source + ": cannot parse: " + e.getMessage(), e);
        }
    }

    /** A whole file, refusing one larger than {@code limit} bytes. */
    public static byte[] readBytes(Path file, long limit) {
        Objects.requireNonNull(file, "file");
        try {
            long size = Files.size(file);
            if (size > limit) {
                throw new PetException(file + ": " + size + " bytes is larger than the " + limit + "-byte limit");
            }
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new PetException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Pretty-printed JSON text of plain values. */
    public static String write(Object value) {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new PetException("cannot write JSON: " + e.getOriginalMessage(), e);
        }
    }
}
