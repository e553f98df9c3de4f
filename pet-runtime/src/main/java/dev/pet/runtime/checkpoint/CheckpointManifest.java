package dev.pet.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * {@code checkpoint-N/manifest.json}: which run wrote the checkpoint, its step, and the size and SHA-256 of every
 * other file in it. Written last, inside the temporary directory, so a renamed checkpoint always has one; checked
 * before a checkpoint is resumed from, so a flipped bit anywhere in it (including the manifest, whose strict parse
 * or cross-checks then fail) never reaches training.
 */
public record CheckpointManifest(String runId, long step, Map<String, FileDigest> files) {
    public static final String FILE = "manifest.json";
    static final String FORMAT = "pet-checkpoint/1";
    private static final long MAX_BYTES = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** Size and SHA-256 of one file. */
    public record FileDigest(long size, String sha256) {
        public FileDigest {
            if (size < 0 || !Checksums.isSha256(sha256)) {
                throw new IllegalArgumentException("bad digest " + size + " " + sha256);
            }
        }
    }

    public CheckpointManifest {
        Objects.requireNonNull(runId, "runId");
        files = Map.copyOf(files);
    }

    /** Digests every file under {@code dir} (except the manifest itself). */
    static CheckpointManifest of(Path dir, String runId, long step) throws IOException {
        Map<String, FileDigest> files = new TreeMap<>();
        for (Path file : regularFiles(dir)) {
            String name = relativeName(dir, file);
            if (!name.equals(FILE)) {
                files.put(name, new FileDigest(Files.size(file), Checksums.sha256(file)));
            }
        }
        return new CheckpointManifest(runId, step, files);
    }

    void write(Path dir) throws IOException {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("format", FORMAT);
        json.put("run_id", runId);
        json.put("step", step);
        Map<String, Object> entries = new TreeMap<>();
        files.forEach((name, d) -> entries.put(name, Map.of("size", d.size(), "sha256", d.sha256())));
        json.put("files", entries);
        try (FileChannel channel = FileChannel.open(dir.resolve(FILE), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.wrap(JSON.writeValueAsBytes(json));
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
            channel.force(true);
        }
    }

    /** Reads and checks the manifest of {@code dir}; every malformed field is an error naming the file. */
    static CheckpointManifest read(Path dir) {
        Path file = dir.resolve(FILE);
        try {
            if (!Files.isRegularFile(file)) {
                throw new CheckpointException(file + " is missing");
            }
            if (Files.size(file) > MAX_BYTES) {
                throw new CheckpointException(file + " is larger than 1 MiB; not a checkpoint manifest");
            }
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject() || !FORMAT.equals(node.path("format").asText(null))) {
                throw new CheckpointException(file + ": not a " + FORMAT + " manifest");
            }
            JsonNode runId = node.path("run_id");
            JsonNode step = node.path("step");
            JsonNode files = node.path("files");
            if (!runId.isTextual() || !step.isIntegralNumber() || !files.isObject() || node.size() != 4) {
                throw new CheckpointException(file + ": expected exactly format, run_id, step and files");
            }
            Map<String, FileDigest> digests = new TreeMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = files.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                JsonNode size = e.getValue().path("size");
                JsonNode sha = e.getValue().path("sha256");
                if (!size.isIntegralNumber() || !sha.isTextual() || e.getValue().size() != 2) {
                    throw new CheckpointException(file + ": files." + e.getKey() + " needs exactly size and sha256");
                }
                digests.put(e.getKey(), new FileDigest(size.asLong(), sha.asText()));
            }
            return new CheckpointManifest(runId.asText(), step.asLong(), digests);
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Checks {@code dir} against this manifest: the same set of files, each with the recorded size and SHA-256.
     * Returns one line per problem (empty when the checkpoint is intact), each naming the file.
     */
    List<String> verify(Path dir) throws IOException {
        List<String> problems = new ArrayList<>();
        Map<String, Path> present = new TreeMap<>();
        for (Path file : regularFiles(dir)) {
            present.put(relativeName(dir, file), file);
        }
        present.remove(FILE);
        for (Map.Entry<String, FileDigest> e : files.entrySet()) {
            Path file = present.remove(e.getKey());
            if (file == null) {
                problems.add(dir.resolve(e.getKey()) + " is missing");
            } else if (Files.size(file) != e.getValue().size()) {
                problems.add(file + " has " + Files.size(file) + " bytes, its manifest says " + e.getValue().size());
            } else if (!Checksums.sha256(file).equals(e.getValue().sha256())) {
                problems.add(file + " does not match its SHA-256 in " + FILE);
            }
        }
        present.keySet().forEach(extra -> problems.add(dir.resolve(extra) + " is not in " + FILE));
        return problems;
    }

    private static List<Path> regularFiles(Path dir) throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile).sorted().toList();
        }
    }

    private static String relativeName(Path dir, Path file) {
        return dir.relativize(file).toString().replace('\\', '/');
    }
}
