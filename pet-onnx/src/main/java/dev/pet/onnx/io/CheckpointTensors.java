package dev.pet.onnx.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The weights of a Hugging Face model directory, whatever their layout: one {@value #SINGLE_FILE}, or shards
 * ({@code model-00001-of-00004.safetensors}, ...) listed by {@value #INDEX_FILE}, whose {@code weight_map} names the
 * shard of every tensor. Model families read their checkpoints only through {@link #read(Path)}, so every family
 * accepts both layouts, files and tensors of any size (each tensor is memory-mapped on its own, see
 * {@link SafeTensors}) and every stored element type; converting half-precision tensors to what a graph needs is
 * the family's choice ({@link Tensor#castTo}).
 *
 * <p>The index is untrusted input: size-capped, strictly parsed, and checked against the shards. A shard path must
 * stay inside the model directory (also after resolving symbolic links); a shard must exist; every tensor the index
 * names must be in its shard, and every tensor of a read shard must be named by the index for that shard (a tensor
 * in two shards is an error). Errors name the file and the tensor.
 *
 * @param directory the model directory
 * @param tensors   every tensor by name, in index (or file) order
 * @param sources   the file each tensor was read from, for messages
 */
public record CheckpointTensors(Path directory, Map<String, Tensor> tensors, Map<String, Path> sources) {
    /** The single-file layout. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The sharded layout's index. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final long MAX_INDEX_BYTES = 64L << 20;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(8).build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build());

    public CheckpointTensors {
        Objects.requireNonNull(directory, "directory");
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        sources = Collections.unmodifiableMap(new LinkedHashMap<>(sources));
    }

    /** Whether {@code dir} holds safetensors weights in either layout. */
    public static boolean isPresent(Path dir) {
        return Files.isRegularFile(dir.resolve(SINGLE_FILE)) || Files.isRegularFile(dir.resolve(INDEX_FILE));
    }

    /** The file a tensor was read from; fails naming the tensor when absent. */
    public Path source(String tensor) {
        Path p = sources.get(tensor);
        if (p == null) {
            throw new OnnxException(directory + ": the checkpoint has no tensor '" + tensor + "'");
        }
        return p;
    }

    /**
     * Reads {@code dir}'s weights: {@value #SINGLE_FILE} when present (as Hugging Face's loader prefers it), else
     * the shards of {@value #INDEX_FILE}.
     */
    public static CheckpointTensors read(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            Map<String, Tensor> tensors = SafeTensors.read(single);
            Map<String, Path> sources = new LinkedHashMap<>();
            tensors.keySet().forEach(name -> sources.put(name, single));
            return new CheckpointTensors(dir, tensors, sources);
        }
        Path index = dir.resolve(INDEX_FILE);
        if (!Files.isRegularFile(index)) {
            throw new OnnxException(dir + ": no " + SINGLE_FILE + " and no " + INDEX_FILE
                    + " (a Hugging Face checkpoint in safetensors format has one of them)");
        }
        return readSharded(dir, index);
    }

    private static CheckpointTensors readSharded(Path dir, Path index) {
        Map<String, String> weightMap = parseIndex(index);
        Path realDir;
        try {
            realDir = dir.toRealPath();
        } catch (IOException e) {
            throw new OnnxException("cannot resolve " + dir + ": " + e.getMessage(), e);
        }
        // Shard file name -> the tensors the index puts there, in index order.
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        weightMap.forEach((tensor, shard) -> byShard.computeIfAbsent(shard, s -> new ArrayList<>()).add(tensor));
        // Every shard path is checked before any is read, so a missing or escaping shard is reported as such.
        Map<String, Path> shardPaths = new LinkedHashMap<>();
        byShard.forEach((shard, names) -> shardPaths.put(shard, shardPath(dir, realDir, index, shard, names.get(0))));
        Map<String, Tensor> all = new LinkedHashMap<>();
        Map<String, Path> sources = new LinkedHashMap<>();
        for (Map.Entry<String, List<String>> en : byShard.entrySet()) {
            List<String> expected = en.getValue();
            Path shard = shardPaths.get(en.getKey());
            Map<String, Tensor> contents = SafeTensors.read(shard);
            for (String name : contents.keySet()) {
                String owner = weightMap.get(name);
                if (owner == null) {
                    throw new OnnxException(shard + ": tensor '" + name + "' is not listed in " + index
                            + "'s weight_map");
                }
                if (!owner.equals(en.getKey())) {
                    throw new OnnxException(shard + ": tensor '" + name + "' is also stored here, but " + index
                            + " puts it in '" + owner + "' (a tensor may be in one shard only)");
                }
            }
            for (String name : expected) {
                Tensor t = contents.get(name);
                if (t == null) {
                    throw new OnnxException(shard + ": no tensor '" + name + "', which " + index
                            + " says is in this shard");
                }
                all.put(name, t);
                sources.put(name, shard);
            }
        }
        // Index order, not shard order, so that callers see one stable order whatever the sharding.
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        weightMap.keySet().forEach(k -> ordered.put(k, all.get(k)));
        return new CheckpointTensors(dir, ordered, sources);
    }

    /** {@code weight_map} of an index: tensor name to shard file name, validated as JSON. */
    static Map<String, String> parseIndex(Path index) {
        JsonNode root;
        try {
            long size = Files.size(index);
            if (size > MAX_INDEX_BYTES) {
                throw new OnnxException(index + ": " + size + " bytes is above the " + MAX_INDEX_BYTES
                        + "-byte limit for a checkpoint index");
            }
            root = JSON.readTree(Files.readString(index, StandardCharsets.UTF_8));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new OnnxException(index + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new OnnxException("cannot read " + index + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new OnnxException(index + ": expected a JSON object with a 'weight_map'");
        }
        JsonNode metadata = root.get("metadata");
        if (metadata != null && !metadata.isObject() && !metadata.isNull()) {
            throw new OnnxException(index + ": 'metadata' must be an object");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new OnnxException(index + ": 'weight_map' must be an object mapping tensor names to shard files");
        }
        if (map.isEmpty()) {
            throw new OnnxException(index + ": 'weight_map' names no tensor");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> en : map.properties()) {
            if (en.getKey().isEmpty()) {
                throw new OnnxException(index + ": 'weight_map' has an empty tensor name");
            }
            if (!en.getValue().isTextual() || en.getValue().asText().isEmpty()) {
                throw new OnnxException(index + ": tensor '" + en.getKey() + "' maps to " + en.getValue()
                        + ", expected a shard file name");
            }
            out.put(en.getKey(), en.getValue().asText());
        }
        return out;
    }

    private static Path shardPath(Path dir, Path realDir, Path index, String shard, String tensor) {
        Path rel;
        try {
            rel = Path.of(shard);
        } catch (java.nio.file.InvalidPathException e) {
            throw new OnnxException(index + ": tensor '" + tensor + "' maps to an invalid file name '" + shard + "'");
        }
        Path p = dir.resolve(rel).normalize();
        if (rel.isAbsolute() || !p.startsWith(dir.normalize())) {
            throw new OnnxException(index + ": tensor '" + tensor + "' maps to '" + shard
                    + "', outside the model directory " + dir);
        }
        if (!Files.isRegularFile(p)) {
            throw new OnnxException(p + ": missing shard; " + index + " puts tensor '" + tensor + "' in it");
        }
        try {
            if (!p.toRealPath().startsWith(realDir)) {
                throw new OnnxException(index + ": tensor '" + tensor + "' maps to '" + shard
                        + "', which links outside the model directory " + dir);
            }
        } catch (IOException e) {
            throw new OnnxException("cannot resolve " + p + ": " + e.getMessage(), e);
        }
        return p;
    }

    /**
     * Writes tensors in Hugging Face's layout: one {@value #SINGLE_FILE} when they fit in {@code maxShardBytes},
     * otherwise {@code model-0000k-of-0000n.safetensors} shards filled in map order (a tensor larger than the limit
     * gets a shard of its own) and {@value #INDEX_FILE} with {@code metadata.total_size}. Each file is written
     * atomically, the index last, so a reader never sees an index naming an unwritten shard; the other layout's entry
     * file, if present, is then removed so that {@link #read} does not pick stale weights.
     */
    public static void write(Path dir, Map<String, Tensor> tensors, long maxShardBytes) {
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(tensors, "tensors");
        if (maxShardBytes <= 0) {
            throw new OnnxException("maximum shard size must be positive, found " + maxShardBytes);
        }
        List<Map<String, Tensor>> shards = new ArrayList<>();
        Map<String, Tensor> current = new LinkedHashMap<>();
        long currentBytes = 0;
        long total = 0;
        for (Map.Entry<String, Tensor> en : tensors.entrySet()) {
            long b = en.getValue().byteSize();
            if (!current.isEmpty() && currentBytes + b > maxShardBytes) {
                shards.add(current);
                current = new LinkedHashMap<>();
                currentBytes = 0;
            }
            current.put(en.getKey(), en.getValue());
            currentBytes += b;
            total += b;
        }
        shards.add(current);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new OnnxException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        Map<String, String> metadata = Map.of("format", "pt");
        if (shards.size() == 1) {
            SafeTensors.write(dir.resolve(SINGLE_FILE), shards.get(0), metadata);
            deleteStale(dir.resolve(INDEX_FILE));
            return;
        }
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", total);
        ObjectNode weightMap = root.putObject("weight_map");
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            SafeTensors.write(dir.resolve(name), shards.get(i), metadata);
            shards.get(i).keySet().forEach(k -> weightMap.put(k, name));
        }
        Path index = dir.resolve(INDEX_FILE);
        try {
            AtomicFiles.write(index, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
        } catch (IOException e) {
            throw new OnnxException("cannot write " + index + ": " + e.getMessage(), e);
        }
        deleteStale(dir.resolve(SINGLE_FILE));
    }

    private static void deleteStale(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new OnnxException("cannot remove " + file + " of the other checkpoint layout: " + e.getMessage(), e);
        }
    }
}
