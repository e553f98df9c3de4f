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
 * Manages one run's {@code output_dir/checkpoint-N/}: each checkpoint is written into a hidden temporary directory
 * (payload writers first, then {@code trainer_state.json}, then the {@link CheckpointManifest} with every file's
 * SHA-256) and renamed into place, so a directory named {@code checkpoint-N} is always complete; a kill mid-write
 * leaves only a temporary directory, which is ignored and cleaned up by the next save. Checkpoints belong to the run
 * id in their manifest: listing, resuming and pruning (to the newest {@code keep}) see only this run's.
 */
public final class CheckpointManager {
    public static final String STATE_FILE = "trainer_state.json";
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d{1,18})");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.checkpoint");

    private final Path outputDir;
    private final String runId;
    private final int keep;

    public CheckpointManager(Path outputDir, String runId, int keep) {
        this.outputDir = Objects.requireNonNull(outputDir, "outputDir");
        this.runId = Objects.requireNonNull(runId, "runId");
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
            CheckpointManifest.of(dir, runId, step).write(dir);
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

    /**
     * This run's complete checkpoints, oldest first (their files are not hashed here; see {@link #resumePoint()}).
     * Directories without a readable manifest and state, or written by another run, are skipped.
     */
    public List<Checkpoint> list() {
        List<Checkpoint> found = new ArrayList<>();
        for (Path dir : checkpointDirectories()) {
            try {
                found.add(open(dir));
            } catch (CheckpointException e) {
                LOG.log(System.Logger.Level.DEBUG, "not a checkpoint of run {0}: {1}", runId, e.getMessage());
            }
        }
        found.sort(Comparator.comparingLong(Checkpoint::step));
        return found;
    }

    /**
     * The newest intact checkpoint of this run: its manifest, state and every file's size and SHA-256 check out.
     * A newer checkpoint that fails is reported (naming the bad file) and skipped in favour of the one before it.
     * When checkpoints exist but none is intact, resuming is refused rather than silently starting over.
     */
    public Optional<Checkpoint> resumePoint() {
        List<Path> dirs = new ArrayList<>(checkpointDirectories());
        dirs.sort(Comparator.comparingLong(CheckpointManager::stepOf).reversed());
        List<String> rejected = new ArrayList<>();
        for (Path dir : dirs) {
            String problem;
            try {
                CheckpointManifest manifest = CheckpointManifest.read(dir);
                if (!manifest.runId().equals(runId)) {
                    LOG.log(System.Logger.Level.WARNING, "ignoring {0}: written by run {1}, not this run ({2})", dir,
                            manifest.runId(), runId);
                    continue;
                }
                List<String> problems = manifest.verify(dir);
                if (problems.isEmpty()) {
                    Checkpoint c = open(dir);
                    if (!rejected.isEmpty()) {
                        LOG.log(System.Logger.Level.WARNING, "resuming from the previous intact checkpoint {0}", dir);
                    }
                    return Optional.of(c);
                }
                problem = String.join("; ", problems);
            } catch (CheckpointException e) {
                problem = e.getMessage();
            } catch (IOException e) {
                problem = "cannot read " + dir + ": " + e.getMessage();
            }
            LOG.log(System.Logger.Level.WARNING, "checkpoint {0} is corrupt, not resuming from it: {1}",
                    dir.getFileName(), problem);
            rejected.add(problem);
        }
        if (!rejected.isEmpty()) {
            throw new CheckpointException("no intact checkpoint to resume from in " + outputDir + " ("
                    + String.join(" | ", rejected) + "); training on corrupt state is refused: restore the files, "
                    + "or start over with --overwrite");
        }
        return Optional.empty();
    }

    /**
     * What is wrong with the checkpoint of step {@code step} of run {@code runId} in {@code dir} (its manifest, run id,
     * step, trainer state, and every file's size and SHA-256); empty when it is intact. For copies that come from
     * elsewhere, such as pet-spark's from a Hadoop file system, checked before they are moved into a run directory.
     */
    public static List<String> verify(Path dir, String runId, long step) {
        try {
            CheckpointManifest manifest = CheckpointManifest.read(dir);
            if (!manifest.runId().equals(runId)) {
                return List.of(dir + " was written by run " + manifest.runId() + ", not by run " + runId);
            }
            List<String> problems = new ArrayList<>(manifest.verify(dir));
            if (problems.isEmpty()) {
                long stateStep = readState(dir.resolve(STATE_FILE)).step();
                if (manifest.step() != step || stateStep != step) {
                    problems.add(dir + ": expected step " + step + ", its manifest says " + manifest.step()
                            + " and its state " + stateStep);
                }
            }
            return problems;
        } catch (CheckpointException e) {
            return List.of(e.getMessage());
        } catch (IOException e) {
            return List.of("cannot read " + dir + ": " + e.getMessage());
        }
    }

    /** A checkpoint of this run with a well-formed manifest and state (files not hashed). */
    private Checkpoint open(Path dir) {
        CheckpointManifest manifest = CheckpointManifest.read(dir);
        long step = stepOf(dir);
        if (!manifest.runId().equals(runId)) {
            throw new CheckpointException(dir + " was written by run " + manifest.runId());
        }
        TrainerState state = readState(dir.resolve(STATE_FILE));
        if (manifest.step() != step || state.step() != step) {
            throw new CheckpointException(dir + ": its manifest says step " + manifest.step() + " and its state step "
                    + state.step());
        }
        return new Checkpoint(dir, state);
    }

    /** Every {@code checkpoint-N} directory, whoever wrote it. */
    public List<Path> checkpointDirectories() {
        if (!Files.isDirectory(outputDir)) {
            return List.of();
        }
        List<Path> dirs = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(outputDir)) {
            for (Path entry : entries) {
                if (NAME.matcher(entry.getFileName().toString()).matches() && Files.isDirectory(entry)) {
                    dirs.add(entry);
                }
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot list " + outputDir + ": " + e, e);
        }
        dirs.sort(Comparator.comparingLong(CheckpointManager::stepOf));
        return dirs;
    }

    private static long stepOf(Path dir) {
        Matcher m = NAME.matcher(dir.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(dir + " is not a checkpoint directory");
        }
        return Long.parseLong(m.group(1));
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

    /** Whether {@code name} is a hidden temporary left by an interrupted atomic write. */
    static boolean isTemporary(String name) {
        return name.startsWith(AtomicFiles.TEMP_PREFIX);
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
