package dev.pet.runtime.checkpoint;

import dev.pet.onnx.io.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pet.api.PetException;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileStore;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * A training run's claim on its {@code output_dir}, held for the whole run:
 * <ul>
 *   <li><b>Lock.</b> {@code .pet.lock} is locked with {@link FileChannel#tryLock()} and holds the holder's PID and
 *   start time; a second run into the same directory is refused naming that PID. The OS drops the lock when the
 *   process dies, so a lock file that still names a holder when the lock is free was left by a run that was killed
 *   or crashed: that is reported, and the run proceeds.</li>
 *   <li><b>Run manifest.</b> {@code run.json} holds the run id, when the run started, and its resolved config (as
 *   {@link RunConfig#identity()}) with its hash. Checkpoints record the run id, so pruning and resuming only ever
 *   touch this run's own.</li>
 *   <li><b>Whose directory.</b> A fresh run ({@code resume_training: false}) refuses a directory that holds another
 *   run's files unless {@code overwrite_output_dir} ({@code --overwrite}) asks to delete them first; a resumed run
 *   continues the run in {@code run.json} and is refused, naming the keys that differ, when the config changed.</li>
 * </ul>
 */
public final class RunDirectory implements AutoCloseable {
    public static final String LOCK_FILE = ".pet.lock";
    public static final String MANIFEST_FILE = "run.json";
    public static final String METRICS_FILE = "metrics.jsonl";
    public static final String ADAPTER_DIR = "adapter";
    static final String FORMAT = "pet-run/1";
    private static final long MAX_MANIFEST_BYTES = 4L << 20;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.checkpoint");

    private final Path dir;
    private final String runId;
    private final FileChannel lockChannel;
    private final FileLock lock;
    private final String staleHolder;

    private RunDirectory(Path dir, String runId, FileChannel lockChannel, FileLock lock, String staleHolder) {
        this.dir = dir;
        this.runId = runId;
        this.lockChannel = lockChannel;
        this.lock = lock;
        this.staleHolder = staleHolder;
    }

    /**
     * Claims {@code config.outputDir()} for a training run: checks it can be a run directory, locks it, and applies
     * the fresh/resume/overwrite rules. Close it when the run ends.
     */
    public static RunDirectory open(RunConfig config) {
        Objects.requireNonNull(config, "config");
        config.requireLocalOutput();
        Path dir = config.outputDir();
        prepare(dir);
        FileChannel channel;
        Path lockFile = dir.resolve(LOCK_FILE);
        try {
            channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new ConfigException("output_dir", dir + " is not writable: cannot create " + LOCK_FILE + " ("
                    + reason(e) + ")", e);
        }
        try {
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // held by another run in this JVM
            }
            if (lock == null) {
                String holder = readHolder(channel);
                throw new PetException("output_dir " + dir + " is in use by another run ("
                        + (holder.isEmpty() ? "holder unknown" : holder) + "); wait for it to finish, or give this run "
                        + "another output_dir");
            }
            String stale = readHolder(channel);
            if (!stale.isEmpty()) {
                LOG.log(System.Logger.Level.WARNING, "output_dir {0} was still claimed by a run that is gone ({1}): it "
                        + "was killed or crashed; its checkpoints are verified before any is resumed", dir, stale);
            }
            writeHolder(channel);
            return new RunDirectory(dir, claim(dir, config), channel, lock, stale.isEmpty() ? null : stale);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new PetException("cannot lock output_dir " + dir + ": " + reason(e), e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    public Path directory() {
        return dir;
    }

    /** This run's id, as recorded in {@code run.json} and in each of its checkpoints' manifests. */
    public String runId() {
        return runId;
    }

    /** When the lock file still named a holder that is gone (a killed or crashed run): that holder. */
    public Optional<String> staleHolder() {
        return Optional.ofNullable(staleHolder);
    }

    /** The checkpoint manager of this run, keeping its newest {@code keep} checkpoints. */
    public CheckpointManager checkpoints(int keep) {
        return new CheckpointManager(dir, runId, keep);
    }

    /** Releases the lock; the lock file stays (empty), so no second process can race on its inode. */
    @Override
    public void close() {
        try {
            lockChannel.truncate(0);
            lockChannel.force(true);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot clear {0}: {1}", dir.resolve(LOCK_FILE), e.getMessage());
        } finally {
            try {
                lock.release();
            } catch (IOException ignored) {
                // closing the channel releases it too
            }
            closeQuietly(lockChannel);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------

    /** Checks that {@code dir} is, or can become, a writable directory, saying why not. */
    static void prepare(Path dir) {
        Path existing = dir.toAbsolutePath();
        while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            existing = existing.getParent();
        }
        if (existing != null && !Files.isDirectory(existing)) {
            throw new ConfigException("output_dir", (existing.equals(dir.toAbsolutePath()) ? dir.toString()
                    : dir + ": " + existing) + " is " + kind(existing) + ", not a directory");
        }
        String special = existing == null ? null : specialFileSystem(existing);
        if (special != null) {
            throw new ConfigException("output_dir", dir + " is on the " + special + " file system, which the kernel "
                    + "provides and which cannot hold a run's files; choose a directory on a disk");
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new ConfigException("output_dir", "cannot create " + dir + " (" + reason(e) + ")", e);
        }
        if (!Files.isWritable(dir)) {
            throw new ConfigException("output_dir", dir + " is not writable by this user");
        }
    }

    private static String kind(Path p) {
        if (Files.isRegularFile(p)) {
            return "a regular file";
        }
        if (Files.isSymbolicLink(p)) {
            return "a broken symbolic link";
        }
        return "a device or other special file";
    }

    private static String specialFileSystem(Path existing) {
        try {
            FileStore store = Files.getFileStore(existing);
            String type = store.type();
            return Set.of("proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "securityfs")
                    .contains(type) ? type : null;
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    static String reason(IOException e) {
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof FileSystemException fs && fs.getReason() != null) {
            return fs.getReason();
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static String readHolder(FileChannel channel) throws IOException {
        long size = Math.min(channel.size(), 4096);
        ByteBuffer buffer = ByteBuffer.allocate((int) size);
        while (buffer.hasRemaining() && channel.read(buffer, buffer.position()) > 0) {
            // read the whole (small) file
        }
        return new String(buffer.array(), 0, buffer.position(), StandardCharsets.UTF_8).strip()
                .replace('\n', ',').replace(",", ", ");
    }

    private static void writeHolder(FileChannel channel) throws IOException {
        String text = "pid " + ProcessHandle.current().pid() + "\nsince " + Instant.now() + "\n";
        channel.truncate(0);
        channel.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)), 0);
        channel.force(true);
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing more to release
        }
    }

    /** Applies the fresh/resume/overwrite rules under the lock and returns the run id. */
    private static String claim(Path dir, RunConfig config) throws IOException {
        // Through bytes, so number nodes compare like the ones read back from run.json.
        JsonNode identity = JSON.readTree(JSON.writeValueAsBytes(config.identity()));
        List<String> content = runContent(dir);
        ObjectNode previous = Files.exists(dir.resolve(MANIFEST_FILE)) ? readManifest(dir) : null;
        if (config.overwriteOutputDir()) {
            if (!content.isEmpty()) {
                LOG.log(System.Logger.Level.WARNING, "overwrite_output_dir: deleting {0} from {1}", content, dir);
                for (String name : content) {
                    AtomicFiles.deleteTree(dir.resolve(name));
                }
            }
        } else if (config.resumeTraining() && previous != null) {
            List<String> changed = differences("", previous.path("config"), identity);
            if (!changed.isEmpty() || !config.hash().equals(previous.path("config_hash").asText())) {
                throw new PetException("cannot resume the run in " + dir + ": the config changed since it started ("
                        + (changed.isEmpty() ? "config hash differs" : String.join(", ", changed)) + "); restore "
                        + "those values, or start a new run in another output_dir or with --overwrite");
            }
            return previous.path("run_id").asText();
        } else if (!content.isEmpty()) {
            String whose = previous == null ? "another run's files" : "another run (" + previous.path("run_id").asText()
                    + ", started " + previous.path("created").asText() + ")";
            throw new ConfigException("output_dir", dir + " holds " + whose + ": " + String.join(", ", content)
                    + (config.resumeTraining() ? " but no " + MANIFEST_FILE + " to resume from" : "")
                    + "; " + (config.resumeTraining() ? "" : "resume it with resume_training: true, ")
                    + "choose another output_dir, or pass --overwrite (overwrite_output_dir: true) to delete them");
        }
        String id = UUID.randomUUID().toString();
        writeManifest(dir, id, config, identity);
        return id;
    }

    /** Names in the directory that a run writes (checkpoints, final adapter, metrics, manifest, temporaries). */
    private static List<String> runContent(Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        try (Stream<Path> list = Files.list(dir)) {
            for (Path p : (Iterable<Path>) list.sorted()::iterator) {
                String name = p.getFileName().toString();
                if (name.matches("checkpoint-\\d+") || name.equals(ADAPTER_DIR) || name.equals(MANIFEST_FILE)
                        || name.equals(METRICS_FILE) || CheckpointManager.isTemporary(name)
                        || (name.startsWith(METRICS_FILE) && name.endsWith(".tmp"))) {
                    names.add(name);
                }
            }
        }
        return names;
    }

    private static ObjectNode readManifest(Path dir) {
        Path file = dir.resolve(MANIFEST_FILE);
        try {
            if (Files.size(file) > MAX_MANIFEST_BYTES) {
                throw new ConfigException("output_dir", file + " is larger than 4 MiB; not a run manifest");
            }
            JsonNode node = JSON.readTree(file.toFile());
            if (node instanceof ObjectNode o && FORMAT.equals(o.path("format").asText(null))
                    && o.path("run_id").isTextual() && o.path("config").isObject()
                    && o.path("config_hash").isTextual()) {
                return o;
            }
            throw new ConfigException("output_dir", file + " is not a " + FORMAT + " run manifest");
        } catch (IOException e) {
            throw new ConfigException("output_dir", "cannot read " + file + " (" + reason(e) + "); it is damaged: "
                    + "start a new run with --overwrite or in another output_dir", e);
        }
    }

    private static void writeManifest(Path dir, String id, RunConfig config, JsonNode identity) throws IOException {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("format", FORMAT);
        json.put("run_id", id);
        json.put("created", Instant.now().toString());
        json.put("config_hash", config.hash());
        json.put("config", identity);
        Path file = dir.resolve(MANIFEST_FILE);
        AtomicFiles.write(file, JSON.writeValueAsBytes(json));
    }

    /** Keys whose values differ between two config trees, as {@code a.b.c (was X, now Y)}. */
    static List<String> differences(String prefix, JsonNode was, JsonNode now) {
        List<String> out = new ArrayList<>();
        if (was.isObject() && now.isObject()) {
            Set<String> keys = new TreeSet<>();
            was.fieldNames().forEachRemaining(keys::add);
            now.fieldNames().forEachRemaining(keys::add);
            for (String key : keys) {
                out.addAll(differences(prefix.isEmpty() ? key : prefix + "." + key, was.path(key), now.path(key)));
            }
        } else if (!was.equals(now)) {
            out.add(prefix + " (was " + show(was) + ", now " + show(now) + ")");
        }
        return out;
    }

    private static String show(JsonNode n) {
        return n.isMissingNode() ? "unset" : n.toString();
    }
}
