package dev.pet.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.runtime.checkpoint.CheckpointManager;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A run directory at a Hadoop {@code FileSystem} URI ({@code output_dir: hdfs://...}, {@code s3a://}, {@code abfs://},
 * {@code file:/...}). The replicas train in local staging directories; rank 0 publishes into the URI the run's
 * {@code run.json} (its config) when training begins, each complete checkpoint and {@code metrics.jsonl} as it is
 * written, and the final {@code adapter/} with {@code metrics.jsonl} at the end. Everything is first written under a
 * hidden temporary name in the URI and then renamed, so no name ever shows a half-written file or checkpoint (on
 * HDFS and local file systems a rename is atomic; an object store copies on rename, and there every fetched checkpoint
 * is still checked against its manifest's SHA-256s). When a stage resumes, every task fetches the newest intact
 * checkpoint into its staging directory.
 *
 * <p>Serializable: it carries the driver's Hadoop configuration ({@code spark.hadoop.*}, credentials providers) to
 * the executors. Each process opens its own {@link FileSystem} instance, without checksum side files, and closes it.
 */
final class HadoopRunDirectory implements Serializable, Closeable {
    private static final long serialVersionUID = 1L;
    /** Hidden names for uploads in progress and for what a replaced entry was renamed to before deletion. */
    static final String TEMP_PREFIX = ".pet-publish-";
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d{1,18})");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final System.Logger LOG = System.getLogger("dev.pet.spark");

    private final String uri;
    private final byte[] hadoopConf;
    private transient FileSystem fs;

    private HadoopRunDirectory(String uri, byte[] hadoopConf) {
        this.uri = uri;
        this.hadoopConf = hadoopConf;
    }

    /** The run directory at {@code uri}, reached with {@code conf} (the driver's, from Spark). */
    static HadoopRunDirectory of(URI uri, Configuration conf) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            conf.write(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new HadoopRunDirectory(uri.toString(), bytes.toByteArray());
    }

    String uri() {
        return uri;
    }

    private Path root() {
        return new Path(uri);
    }

    private Path child(String name) {
        return new Path(root(), name);
    }

    private synchronized FileSystem fs() throws IOException {
        if (fs == null) {
            Configuration conf = new Configuration(false);
            conf.readFields(new DataInputStream(new ByteArrayInputStream(hadoopConf)));
            fs = FileSystem.newInstance(URI.create(uri), conf);
            fs.setWriteChecksum(false); // no .crc side files next to the run's own (LocalFileSystem writes them)
        }
        return fs;
    }

    private PetException failure(String what, Exception e) {
        return new PetException("output_dir " + uri + ": cannot " + what + " (" + reason(e) + ")", e);
    }

    private static String reason(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return e instanceof org.apache.hadoop.security.AccessControlException ? "permission denied: " + m : m;
    }

    /**
     * On the driver, before any task starts: the URI is reachable and a directory, and the fresh/resume/overwrite
     * rules of a local run directory hold for it. A fresh run refuses a URI holding another run's files unless
     * {@code overwrite_output_dir} deletes exactly those; a resumed run finds there the run to continue.
     */
    void prepare(RunConfig config) {
        List<String> content = new ArrayList<>();
        try {
            FileSystem f = fs();
            if (f.exists(root()) && !f.getFileStatus(root()).isDirectory()) {
                throw new ConfigException("output_dir", uri + " is a file, not a directory");
            }
            if (!f.mkdirs(root())) {
                throw new IOException("mkdirs returned false");
            }
            for (FileStatus s : f.listStatus(root())) {
                String name = s.getPath().getName();
                if (CHECKPOINT.matcher(name).matches() || name.equals(RunDirectory.ADAPTER_DIR)
                        || name.equals(RunDirectory.MANIFEST_FILE) || name.equals(RunDirectory.METRICS_FILE)
                        || name.startsWith(TEMP_PREFIX)) {
                    content.add(name);
                }
            }
            content.sort(null);
            if (config.overwriteOutputDir()) {
                for (String name : content) {
                    f.delete(child(name), true);
                }
                if (!content.isEmpty()) {
                    LOG.log(System.Logger.Level.WARNING, "overwrite_output_dir: deleted {0} from {1}", content, uri);
                }
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof PetException p) {
                throw p;
            }
            throw new ConfigException("output_dir", uri + " is not reachable from the driver or not writable ("
                    + reason(e) + ")", e);
        }
        boolean resumable = content.contains(RunDirectory.MANIFEST_FILE);
        if (config.resumeTraining() && resumable && !config.overwriteOutputDir()) {
            // Checked again by rank 0 on its copy; here it fails once, naming the URI, instead of every attempt.
            String hash;
            try {
                hash = JSON.readTree(readString(RunDirectory.MANIFEST_FILE)).path("config_hash").asText("");
            } catch (IOException e) {
                throw failure("read " + RunDirectory.MANIFEST_FILE, e);
            }
            if (!hash.equals(config.hash())) {
                throw new ConfigException("output_dir", "cannot resume the run in " + uri + ": the config changed "
                        + "since it started (config hash " + hash + " in its " + RunDirectory.MANIFEST_FILE + ", now "
                        + config.hash() + "); restore the values, or start a new run in another output_dir or with "
                        + "overwrite_output_dir: true");
            }
        }
        if (!config.overwriteOutputDir() && !content.isEmpty() && !(config.resumeTraining() && resumable)) {
            throw new ConfigException("output_dir", uri + " holds another run's files: " + String.join(", ", content)
                    + (config.resumeTraining() ? " but no " + RunDirectory.MANIFEST_FILE + " to resume from" : "")
                    + "; " + (config.resumeTraining() ? "" : "resume it with resume_training: true, ")
                    + "choose another output_dir, or pass overwrite_output_dir: true to delete them");
        }
    }

    /** Writes a small text file (the stage's reachability marker) straight to its name. */
    void writeString(String name, String text) throws IOException {
        try (OutputStream out = fs().create(child(name), true)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
    }

    String readString(String name) throws IOException {
        try (InputStream in = fs().open(child(name))) {
            return new String(in.readNBytes(1 << 16), StandardCharsets.UTF_8);
        }
    }

    void delete(String name) throws IOException {
        fs().delete(child(name), true);
    }

    /**
     * Publishes the local file or directory {@code local} as {@code name} (a path relative to the URI): uploaded under
     * a hidden temporary name next to it, then renamed. An entry already there is first renamed aside and deleted
     * after, so readers see the old or the new one (or, for that moment, none), never a part.
     */
    void publish(java.nio.file.Path local, String name) {
        Path target = child(name);
        Path parent = target.getParent();
        String id = UUID.randomUUID().toString();
        Path upload = new Path(parent, TEMP_PREFIX + target.getName() + "-" + id);
        Path aside = new Path(parent, TEMP_PREFIX + target.getName() + "-old-" + id);
        try {
            FileSystem f = fs();
            f.mkdirs(parent);
            f.copyFromLocalFile(false, true, new Path(local.toUri()), upload);
            boolean replaced = f.exists(target);
            if (replaced && !f.rename(target, aside)) {
                throw new IOException("rename of " + target + " to " + aside + " returned false");
            }
            if (!f.rename(upload, target)) {
                throw new IOException("rename of " + upload + " to " + target + " returned false");
            }
            if (replaced) {
                f.delete(aside, true);
            }
        } catch (IOException e) {
            throw failure("publish " + name + " from " + local, e);
        }
    }

    /** Deletes the temporaries of uploads a killed task left behind. */
    void deleteTemporaries() {
        try {
            for (FileStatus s : fs().listStatus(root())) {
                if (s.getPath().getName().startsWith(TEMP_PREFIX)) {
                    fs().delete(s.getPath(), true);
                }
            }
        } catch (IOException e) {
            throw failure("delete the temporaries of interrupted uploads", e);
        }
    }

    /** Keeps the newest {@code keep} checkpoints, as the local run directory does. */
    void pruneCheckpoints(int keep) {
        List<String> all = checkpoints();
        try {
            for (int i = 0; i < all.size() - keep; i++) {
                fs().delete(child(all.get(i)), true);
            }
        } catch (IOException e) {
            throw failure("delete old checkpoints", e);
        }
    }

    /** The {@code checkpoint-N} directories at the URI, oldest first. */
    List<String> checkpoints() {
        List<String> names = new ArrayList<>();
        try {
            for (FileStatus s : fs().listStatus(root())) {
                if (s.isDirectory() && CHECKPOINT.matcher(s.getPath().getName()).matches()) {
                    names.add(s.getPath().getName());
                }
            }
        } catch (FileNotFoundException e) {
            return names;
        } catch (IOException e) {
            throw failure("list the checkpoints", e);
        }
        names.sort(Comparator.comparingLong(HadoopRunDirectory::stepOf));
        return names;
    }

    static long stepOf(String checkpoint) {
        Matcher m = CHECKPOINT.matcher(checkpoint);
        if (!m.matches()) {
            throw new IllegalArgumentException(checkpoint + " is not a checkpoint name");
        }
        return Long.parseLong(m.group(1));
    }

    /** Copies file {@code name} to {@code local} (atomically) when the URI has it; says whether it had. */
    boolean fetchFile(String name, java.nio.file.Path local) {
        try {
            if (!fs().exists(child(name))) {
                return false;
            }
            try (InputStream in = fs().open(child(name))) {
                Files.createDirectories(local.toAbsolutePath().getParent());
                AtomicFiles.write(local, channel -> {
                    byte[] buffer = new byte[1 << 16];
                    for (int n; (n = in.read(buffer)) > 0; ) {
                        AtomicFiles.writeFully(channel, java.nio.ByteBuffer.wrap(buffer, 0, n));
                    }
                });
            }
            return true;
        } catch (IOException e) {
            throw failure("fetch " + name + " to " + local, e);
        }
    }

    /**
     * Fetches {@code checkpoint} of run {@code runId} into {@code stagingDir} under its own name, after checking the
     * copy against its manifest; returns what is wrong with it (then nothing is left in the staging directory).
     */
    List<String> fetchCheckpoint(String checkpoint, String runId, java.nio.file.Path stagingDir) {
        java.nio.file.Path copy = stagingDir.resolve(AtomicFiles.TEMP_PREFIX + checkpoint + "-" + UUID.randomUUID());
        try {
            Files.createDirectories(stagingDir);
            fs().copyToLocalFile(false, child(checkpoint), new Path(copy.toUri()), true);
            List<String> problems = CheckpointManager.verify(copy, runId, stepOf(checkpoint));
            if (problems.isEmpty()) {
                Files.move(copy, stagingDir.resolve(checkpoint), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            }
            return problems.stream().map(p -> p.replace(copy.toString(), uri + "/" + checkpoint)).toList();
        } catch (IOException e) {
            return List.of("cannot fetch " + uri + "/" + checkpoint + ": " + reason(e));
        } finally {
            try {
                if (Files.exists(copy)) {
                    AtomicFiles.deleteTree(copy);
                }
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot delete {0}: {1}", copy, e.getMessage());
            }
        }
    }

    /**
     * On rank 0 of a resuming stage: fetches {@code run.json}, {@code metrics.jsonl} and the newest checkpoint that
     * checks out into {@code stagingDir}; a newer one that does not is reported and skipped, as a local resume does.
     * Returns that checkpoint's name and the run id, or empty when the URI holds no run yet.
     */
    Optional<Resume> fetchForResume(java.nio.file.Path stagingDir) {
        if (!fetchFile(RunDirectory.MANIFEST_FILE, stagingDir.resolve(RunDirectory.MANIFEST_FILE))) {
            return Optional.empty();
        }
        String runId;
        try {
            JsonNode manifest = JSON.readTree(stagingDir.resolve(RunDirectory.MANIFEST_FILE).toFile());
            runId = manifest.path("run_id").asText("");
        } catch (IOException e) {
            throw failure("read " + RunDirectory.MANIFEST_FILE, e);
        }
        fetchFile(RunDirectory.METRICS_FILE, stagingDir.resolve(RunDirectory.METRICS_FILE));
        List<String> names = new ArrayList<>(checkpoints());
        java.util.Collections.reverse(names);
        List<String> rejected = new ArrayList<>();
        for (String name : names) {
            List<String> problems = fetchCheckpoint(name, runId, stagingDir);
            if (problems.isEmpty()) {
                return Optional.of(new Resume(name, runId));
            }
            LOG.log(System.Logger.Level.WARNING, "not resuming from {0}/{1}: {2}", uri, name, problems);
            rejected.add(name + ": " + String.join("; ", problems));
        }
        if (!rejected.isEmpty()) {
            throw new PetException("output_dir " + uri + " has no intact checkpoint to resume from ("
                    + String.join(" | ", rejected) + "); training on corrupt state is refused");
        }
        return Optional.of(new Resume(null, runId));
    }

    /** What a resuming stage continues from: a checkpoint (null: none written yet) of run {@code runId}. */
    record Resume(String checkpoint, String runId) {
    }

    @Override
    public synchronized void close() {
        if (fs != null) {
            try {
                fs.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot close the file system of {0}: {1}", uri, e.getMessage());
            }
            fs = null;
        }
    }
}
