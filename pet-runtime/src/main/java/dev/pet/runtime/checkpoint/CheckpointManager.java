package dev.pet.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.runtime.data.DataPosition;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Manages {@code output_dir/checkpoint-N/}: each checkpoint is written into a hidden temporary directory (payload
 * writers first, {@code trainer_state.json} last) and renamed into place, so a directory named
 * {@code checkpoint-N} is always complete; a kill mid-write leaves only a temporary directory, which is ignored and
 * cleaned up by the next save. Only the newest {@code keep} checkpoints are kept.
 */
public final class CheckpointManager {
    public static final String STATE_FILE = "trainer_state.json";
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d{1,18})");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.checkpoint");

    private final Path outputDir;
    private final int keep;

    public CheckpointManager(Path outputDir, int keep) {
        this.outputDir = Objects.requireNonNull(outputDir, "outputDir");
        if (keep < 1) {
            throw new IllegalArgumentException("keep must be >= 1, found " + keep);
        }
        this.keep = keep;
    }

    public Path outputDir() {
        return outputDir;
    }

    public Path directoryFor(long step) {
        return outputDir.resolve("checkpoint-" + step);
    }

    /** Writes checkpoint {@code state.step()} atomically, then prunes to the newest {@code keep}. */
    public Checkpoint save(TrainerState state, List<? extends CheckpointWriter> writers) {
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(writers, "writers");
        Path target = directoryFor(state.step());
        writeAtomically(target, (dir, step) -> {
            for (CheckpointWriter writer : writers) {
                writer.write(dir, step);
            }
            writeState(dir.resolve(STATE_FILE), state);
        }, state.step());
        Checkpoint checkpoint = new Checkpoint(target, state);
        prune();
        return checkpoint;
    }

    /**
     * Fills {@code target} through {@code writer} atomically: the old content (if any) stays until the new one is
     * complete. Used for checkpoints and for the final {@code output_dir/adapter/}.
     */
    public void writeAtomically(Path target, CheckpointWriter writer, long step) {
        try {
            Files.createDirectories(outputDir);
            AtomicFiles.deleteTemporaries(outputDir);
            AtomicFiles.replaceDirectory(target, dir -> writer.write(dir, step));
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + target + ": " + e, e);
        }
    }

    /** Every complete checkpoint, oldest first. Directories whose state is missing or unreadable are skipped. */
    public List<Checkpoint> list() {
        if (!Files.isDirectory(outputDir)) {
            return List.of();
        }
        List<Checkpoint> found = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(outputDir)) {
            for (Path entry : entries) {
                Matcher m = NAME.matcher(entry.getFileName().toString());
                if (!m.matches() || !Files.isDirectory(entry)) {
                    continue;
                }
                long step = Long.parseLong(m.group(1));
                try {
                    TrainerState state = readState(entry.resolve(STATE_FILE));
                    if (state.step() != step) {
                        LOG.log(System.Logger.Level.WARNING, "ignoring {0}: its state says step {1}", entry, state.step());
                        continue;
                    }
                    found.add(new Checkpoint(entry, state));
                } catch (CheckpointException e) {
                    LOG.log(System.Logger.Level.WARNING, "ignoring incomplete checkpoint {0}: {1}", entry, e.getMessage());
                }
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot list " + outputDir + ": " + e, e);
        }
        found.sort(Comparator.comparingLong(Checkpoint::step));
        return found;
    }

    /** The newest complete checkpoint, if any. */
    public Optional<Checkpoint> latest() {
        List<Checkpoint> all = list();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    private void prune() {
        List<Checkpoint> all = list();
        for (int i = 0; i < all.size() - keep; i++) {
            try {
                AtomicFiles.deleteTree(all.get(i).directory());
            } catch (IOException e) {
                throw new CheckpointException("cannot delete old checkpoint " + all.get(i).directory() + ": " + e, e);
            }
        }
    }

    static void writeState(Path file, TrainerState state) throws IOException {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("format_version", TrainerState.FORMAT_VERSION);
        json.put("step", state.step());
        json.put("epoch", state.dataPosition().epoch());
        json.put("batch_index", state.dataPosition().batchIndex());
        json.put("rng_state", new java.util.TreeMap<>(state.rngState()));
        json.put("config_hash", state.configHash());
        json.put("last_loss", Double.isFinite(state.lastLoss()) ? state.lastLoss() : null);
        json.put("tokens_seen", state.tokensSeen());
        byte[] bytes = JSON.writeValueAsBytes(json);
        AtomicFiles.write(file, bytes);
    }

    /** Reads a {@code trainer_state.json}, checking every field. */
    public static TrainerState readState(Path file) {
        try {
            if (!Files.isRegularFile(file)) {
                throw new CheckpointException(file + " is missing");
            }
            if (Files.size(file) > (1 << 20)) {
                throw new CheckpointException(file + " is larger than 1 MiB; not a trainer state");
            }
            JsonNode node = JSON.readTree(file.toFile());
            int version = requireNumber(file, node, "format_version").asInt();
            if (version != TrainerState.FORMAT_VERSION) {
                throw new CheckpointException(file + ": format_version " + version + ", expected " + TrainerState.FORMAT_VERSION);
            }
            Map<String, Long> rng = new LinkedHashMap<>();
            JsonNode rngNode = node.path("rng_state");
            if (!rngNode.isObject()) {
                throw new CheckpointException(file + ": rng_state must be an object");
            }
            rngNode.fields().forEachRemaining(e -> {
                if (!e.getValue().isIntegralNumber()) {
                    throw new CheckpointException(file + ": rng_state." + e.getKey() + " must be an integer");
                }
                rng.put(e.getKey(), e.getValue().asLong());
            });
            JsonNode hash = node.path("config_hash");
            if (!hash.isTextual()) {
                throw new CheckpointException(file + ": config_hash must be a string");
            }
            JsonNode loss = node.path("last_loss");
            return new TrainerState(requireNumber(file, node, "step").asLong(),
                    new DataPosition(requireNumber(file, node, "epoch").asInt(), requireNumber(file, node, "batch_index").asLong()),
                    rng, hash.asText(), loss.isNumber() ? loss.asDouble() : Double.NaN,
                    requireNumber(file, node, "tokens_seen").asLong());
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode requireNumber(Path file, JsonNode node, String key) {
        JsonNode v = node.path(key);
        if (!v.isIntegralNumber()) {
            throw new CheckpointException(file + ": " + key + " must be an integer, found " + v);
        }
        return v;
    }

}
