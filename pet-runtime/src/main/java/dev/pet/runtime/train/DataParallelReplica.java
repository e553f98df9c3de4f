package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.engine.OrtEngine;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.BatchIterator;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.plugin.Plugin;
import dev.pet.runtime.plugin.PluginRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;

/**
 * One replica of a data-parallel fine-tuning run. Every replica loads the same model and PET config, reads the same
 * seeded batch order and trains on its share of each batch's rows ({@code runner_config.batch_size} rows per replica);
 * the gradients are averaged through the {@link Collective}, so all replicas make the update one process would make
 * with {@code batch_size × data_parallel} rows.
 *
 * <p>Rank 0 leads: it owns the run directory (lock, run.json, checkpoints, metrics.jsonl, the final adapter) and runs
 * the ordinary {@link TrainingLoop}. Before each step it tells the followers the step number, the learning rate and
 * the data positions of the micro-batches, and when resuming which checkpoint to load; followers only ever read from
 * the run directory. A replica that fails fails the group: on Spark the barrier stage is retried and the new replicas
 * resume from the newest checkpoint.
 */
public final class DataParallelReplica {
    private static final String STEP = "step";
    private static final String LOAD = "load";
    private static final String DONE = "done";

    private DataParallelReplica() {
    }

    /**
     * What one replica did.
     *
     * @param rank           the replica's rank
     * @param steps          optimizer steps it took part in
     * @param stepNanos      time spent in those steps (compute and exchange)
     * @param exchangedBytes gradient bytes it sent
     * @param summary        the run's summary on rank 0; null on the others
     */
    public record Report(int rank, long steps, long stepNanos, long exchangedBytes, TrainingSummary summary) {
    }

    /** Runs this replica until the leader's loop ends. */
    public static Report run(RunConfig config, RunEnvironment env, Collective collective) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(collective, "collective");
        int replicas = config.runner().dataParallel();
        if (collective.size() != replicas) {
            throw new PetException("runner_config.data_parallel is " + replicas + " but " + collective.size()
                    + " replicas were started");
        }
        if (config.train().isEmpty()) {
            throw new PetException("train_dataset is missing: finetune needs data to train on");
        }
        handshake(config, env, collective);
        RunSetup s = new RunSetup(config, env);
        PackedDataset train = s.open(config.train().get(), env);
        try (OrtEngine engine = s.engine(); GraphTrainStep step = s.trainStep(engine, collective)) {
            Counting counting = new Counting(step, collective);
            if (collective.rank() != 0) {
                follow(counting, train, config);
                return counting.report(null);
            }
            PackedDataset eval = config.eval().map(d -> s.open(d, env)).orElse(null);
            try (RunDirectory run = RunDirectory.open(config)) {
                TrainingSummary summary = new TrainingLoop(run, config, train, eval, new Leader(counting, config.outputDir()), env.listener(),
                        s.base.name(), s.petType()).run();
                broadcast(collective, DONE);
                return counting.report(summary);
            }
        }
    }

    /**
     * Every replica sends the config hash and its plugins' versions; a replica that differs from rank 0 is an error
     * on every replica naming both, before any model is loaded.
     */
    private static void handshake(RunConfig config, RunEnvironment env, Collective collective) {
        String mine = "config " + config.hash() + ", plugins " + pluginVersions(env.plugins());
        List<byte[]> all = collective.allGather(mine.getBytes(StandardCharsets.UTF_8));
        String leader = new String(all.get(0), StandardCharsets.UTF_8);
        for (int r = 1; r < all.size(); r++) {
            String theirs = new String(all.get(r), StandardCharsets.UTF_8);
            if (!theirs.equals(leader)) {
                throw new PetException("data-parallel replica " + r + " differs from replica 0: it has " + theirs
                        + ", replica 0 has " + leader + "; every executor needs the same PET Runtime plugins and "
                        + "run config");
            }
        }
    }

    /** The discovered plugins as sorted {@code id version} entries: what every process of a run must agree on. */
    public static String pluginVersions(PluginRegistry plugins) {
        TreeSet<String> all = new TreeSet<>();
        for (Plugin<?> p : plugins.all()) {
            all.add(p.id() + " " + p.version());
        }
        return all.toString();
    }

    private static void broadcast(Collective collective, String message) {
        collective.allGather(message.getBytes(StandardCharsets.UTF_8));
    }

    /** A follower: does what the leader's messages say until it says {@code done}. */
    private static void follow(Counting step, PackedDataset train, RunConfig config) {
        int batchSize = config.runner().globalBatchSize();
        BatchIterator batches = null;
        while (true) {
            String[] msg = new String(step.collective.allGather(new byte[0]).get(0), StandardCharsets.UTF_8)
                    .split("\n");
            switch (msg[0]) {
                case DONE -> {
                    return;
                }
                case LOAD -> step.loadState(readable(config.outputDir().resolve(msg[1]), step.collective.rank()));
                case STEP -> {
                    long stepNumber = Long.parseLong(msg[1]);
                    double lr = Double.longBitsToDouble(Long.parseUnsignedLong(msg[2], 16));
                    List<Batch> micro = new ArrayList<>();
                    for (int i = 3; i < msg.length; i++) {
                        String[] at = msg[i].split(":");
                        DataPosition p = new DataPosition(Integer.parseInt(at[0]), Long.parseLong(at[1]));
                        if (batches == null || !batches.position().equals(p)) {
                            batches = train.trainBatches(batchSize, config.seed(), p);
                        }
                        micro.add(batches.next());
                    }
                    step.step(micro, lr, stepNumber);
                }
                default -> throw new PetException("data-parallel replica " + step.collective.rank()
                        + " got an unknown message from replica 0: " + msg[0]);
            }
        }
    }

    /**
     * The checkpoint directory rank 0 resumes from, in this replica's output_dir: the same directory when the
     * replicas share one, or the copy a replica fetched into its own (pet-spark's staging for a URI output_dir).
     */
    private static Path readable(Path checkpoint, int rank) {
        if (!java.nio.file.Files.isDirectory(checkpoint)) {
            throw new PetException("data-parallel replica " + rank + " cannot read " + checkpoint + ", which replica "
                    + "0 resumes from: output_dir must be a path every replica reaches (a shared file system), or "
                    + "each replica must fetch the checkpoint into its own before resuming");
        }
        return checkpoint;
    }

    /** A train step that counts steps, time and exchanged bytes. */
    private static final class Counting {
        final GraphTrainStep step;
        final Collective collective;
        long steps;
        long nanos;
        long bytes;

        Counting(GraphTrainStep step, Collective collective) {
            this.step = step;
            this.collective = collective;
        }

        TrainStep.StepResult step(List<Batch> micro, double lr, long stepNumber) {
            long t0 = System.nanoTime();
            TrainStep.StepResult r = step.step(micro, lr, stepNumber);
            nanos += System.nanoTime() - t0;
            steps++;
            bytes += (long) micro.size() * step.exchangedBytesPerMicroBatch();
            return r;
        }

        void loadState(Path dir) {
            step.loadState(dir);
        }

        Report report(TrainingSummary summary) {
            return new Report(collective.rank(), steps, nanos, bytes, summary);
        }
    }

    /** Rank 0's train step: tells the followers what to do, then does it itself. */
    private static final class Leader implements TrainStep {
        private final Counting counting;
        private final Path outputDir;

        Leader(Counting counting, Path outputDir) {
            this.counting = counting;
            this.outputDir = outputDir.toAbsolutePath();
        }

        @Override
        public StepResult step(List<Batch> microBatches, double learningRate, long step) {
            StringBuilder msg = new StringBuilder(STEP).append('\n').append(step).append('\n')
                    .append(Long.toHexString(Double.doubleToRawLongBits(learningRate)));
            for (Batch b : microBatches) {
                msg.append('\n').append(b.position().epoch()).append(':').append(b.position().batchIndex());
            }
            broadcast(counting.collective, msg.toString());
            return counting.step(microBatches, learningRate, step);
        }

        @Override
        public EvalResult evaluate(Batch batch) {
            return counting.step.evaluate(batch);
        }

        @Override
        public void saveState(Path directory) throws java.io.IOException {
            counting.step.saveState(directory);
        }

        @Override
        public void loadState(Path directory) {
            // Relative to output_dir, so a follower finds the checkpoint in its own (local staging per replica).
            Path absolute = directory.toAbsolutePath();
            Path named = absolute.startsWith(outputDir) ? outputDir.relativize(absolute) : absolute;
            broadcast(counting.collective, LOAD + "\n" + named);
            counting.loadState(directory);
        }

        @Override
        public void saveAdapter(Path directory) throws java.io.IOException {
            counting.step.saveAdapter(directory);
        }

        @Override
        public void close() {
        }
    }
}
