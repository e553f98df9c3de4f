package dev.pet.spark;

import dev.pet.api.PetException;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.metrics.CheckpointEvent;
import dev.pet.runtime.metrics.MicrometerListener;
import dev.pet.runtime.metrics.PrometheusEndpoint;
import dev.pet.runtime.metrics.RunInfo;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DataParallelReplica;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;

/**
 * The body of one barrier task: checks that this executor runs the driver's plugins, joins the stage's
 * {@link Exchange}, checks that it reaches the run directory, then runs one {@link DataParallelReplica}. A retried
 * stage (attempt &gt; 0) resumes from the newest checkpoint. When output_dir is a Hadoop FileSystem URI, each task
 * trains in a local staging directory, fetches what it needs from the URI, and rank 0 publishes the run there
 * ({@link HadoopRunDirectory}).
 */
final class ReplicaTask implements FlatMapFunction<Iterator<Integer>, ReplicaStats> {
    private static final long serialVersionUID = 1L;
    private static final String REACH_MARKER = ".pet-reach";
    private static final System.Logger LOG = System.getLogger("dev.pet.spark");

    private final String configYaml;
    private final String driverPlugins;
    private final Exchange exchange;
    private final FaultInjection faults;
    /** Where output_dir is when it is a Hadoop FileSystem URI; null when it is a path every executor mounts. */
    private final HadoopRunDirectory published;
    /** A file in the published run directory that the replicas train on (SparkData's tokens); null for none. */
    private final String publishedData;

    ReplicaTask(String configYaml, String driverPlugins, Exchange exchange, FaultInjection faults) {
        this(configYaml, driverPlugins, exchange, faults, null, null);
    }

    ReplicaTask(String configYaml, String driverPlugins, Exchange exchange, FaultInjection faults,
            HadoopRunDirectory published, String publishedData) {
        this.configYaml = configYaml;
        this.driverPlugins = driverPlugins;
        this.exchange = exchange;
        this.faults = faults;
        this.published = published;
        this.publishedData = publishedData;
    }

    @Override
    public Iterator<ReplicaStats> call(Iterator<Integer> partition) throws IOException {
        BarrierTaskContext context = BarrierTaskContext.get();
        int rank = context.partitionId();
        String address = context.getTaskInfos()[rank].address();
        String executorPlugins = DataParallelReplica.pluginVersions(PluginRegistry.discover(PluginKind.ALL,
                ReplicaTask.class.getClassLoader(), null));
        if (!executorPlugins.equals(driverPlugins)) {
            throw new PetException("the executor at " + address + " (rank " + rank + ") has PET Runtime plugins "
                    + executorPlugins + " but the driver has " + driverPlugins + "; ship the same jars to both "
                    + "(spark-submit --jars)");
        }
        // A retried stage continues the run: its replicas resume from the newest checkpoint of this output_dir.
        boolean retry = context.stageAttemptNumber() > 0;
        List<String> overrides = new ArrayList<>(retry ? List.of("resume_training=true", "overwrite_output_dir=false")
                : List.of());
        String marker = "stage " + context.stageId() + " attempt " + context.stageAttemptNumber();
        Path staging = null;
        if (published != null) {
            // Each task trains in its own local directory; rank 0 publishes from there (see HadoopRunDirectory).
            staging = RunConfigLoader.parse(configYaml, "the Spark driver's run config", List.of()).outputDir()
                    .resolve("stage-" + context.stageId() + "-attempt-" + context.stageAttemptNumber() + "-rank-"
                            + rank + "-" + context.taskAttemptId());
            overrides.add("output_dir=" + staging);
        }
        RunConfig config = RunConfigLoader.parse(configYaml, "the Spark driver's run config", overrides);
        try {
            if (publishedData != null) {
                // At the path the driver's config names (its staging directory's), not under this task's: the path
                // is part of the run's identity, which every replica and every attempt must share.
                Path data = config.train().orElseThrow().datasetDir();
                if (!published.fetchFile(publishedData, data)) {
                    throw new PetException("output_dir " + published.uri() + " has no " + publishedData
                            + ", the training data the driver published there");
                }
            }
            // Rank 0 writes the marker before the tasks meet in open(), so every task can read it right after.
            String problem = rank == 0 ? writeMarker(config.outputDir(), marker) : null;
            DataParallelReplica.Report report;
            String metricsUrl = null;
            try (TaskCollective collective = exchange.open(context, faults);
                    PrometheusEndpoint endpoint = rank == 0 && config.callbacks().prometheusPort() >= 0
                            ? PrometheusEndpoint.start(RingCollective.host(address),
                            config.callbacks().prometheusPort()) : null) {
                checkReachable(collective, config.outputDir(), marker, problem, address);
                Trainer trainer = Trainer.of(config);
                if (published != null) {
                    fetch(collective, config, staging);
                    if (rank == 0) {
                        trainer = trainer.withListener(new Publisher(published, config));
                    }
                }
                if (endpoint != null) {
                    // Rank 0 reports the run, as pet finetune does, on its executor's host.
                    metricsUrl = "http://" + RingCollective.host(address) + ":" + endpoint.port() + "/metrics";
                    LOG.log(System.Logger.Level.INFO, "Prometheus metrics of the run at {0}", metricsUrl);
                    trainer = trainer.withListener(new MicrometerListener(endpoint.registry()));
                }
                report = trainer.finetuneReplica(collective);
            }
            if (published != null && rank == 0) {
                Path adapter = staging.resolve(RunDirectory.ADAPTER_DIR);
                if (Files.isDirectory(adapter)) {
                    published.publish(adapter, RunDirectory.ADAPTER_DIR);
                }
                published.publish(staging.resolve(RunDirectory.METRICS_FILE), RunDirectory.METRICS_FILE);
            }
            TrainingSummary s = report.summary();
            return List.of(new ReplicaStats(rank, address, report.steps(), report.stepNanos(),
                    report.exchangedBytes(), s == null ? -1 : s.steps(), s == null ? Double.NaN : s.finalLoss(),
                    s == null ? null : s.reason().name(), metricsUrl)).iterator();
        } finally {
            if (published != null) {
                published.close();
                if (Files.exists(staging)) {
                    AtomicFiles.deleteTree(staging);
                }
            }
        }
    }

    /**
     * Fills this task's staging directory from the published run when the stage resumes: the checkpoint rank 0 chose
     * (the newest intact one; rank 0 also fetches run.json and metrics.jsonl). The choice is one gather, and only a
     * resuming stage makes it, so a fresh stage gathers exactly as with a shared path.
     */
    private void fetch(TaskCollective collective, RunConfig config, Path staging) {
        if (!config.resumeTraining()) {
            if (collective.rank() == 0) {
                published.deleteTemporaries();
            }
            return;
        }
        String chosen = "";
        if (collective.rank() == 0) {
            published.deleteTemporaries();
            chosen = published.fetchForResume(staging)
                    .filter(r -> r.checkpoint() != null).map(r -> r.checkpoint() + "\n" + r.runId()).orElse("");
        }
        String[] leader = new String(collective.allGather(chosen.getBytes(StandardCharsets.UTF_8)).get(0),
                StandardCharsets.UTF_8).split("\n");
        if (collective.rank() != 0 && leader.length == 2) {
            List<String> problems = published.fetchCheckpoint(leader[0], leader[1], staging);
            if (!problems.isEmpty()) {
                throw new PetException("data-parallel replica " + collective.rank() + " cannot fetch " + leader[0]
                        + ", which replica 0 resumes from: " + String.join("; ", problems));
            }
        }
    }

    /** Rank 0's publisher: run.json when training begins, each checkpoint (and metrics.jsonl) once complete. */
    private static final class Publisher implements TrainingListener {
        private final HadoopRunDirectory published;
        private final Path staging;
        private final int keep;

        Publisher(HadoopRunDirectory published, RunConfig config) {
            this.published = published;
            this.staging = config.outputDir();
            this.keep = Math.max(1, config.callbacks().keepCheckpoints());
        }

        @Override
        public void onTrainingBegin(RunInfo run) {
            published.publish(staging.resolve(RunDirectory.MANIFEST_FILE), RunDirectory.MANIFEST_FILE);
        }

        @Override
        public void onCheckpoint(CheckpointEvent checkpoint) {
            published.publish(checkpoint.directory(), checkpoint.directory().getFileName().toString());
            published.pruneCheckpoints(keep);
            published.publish(staging.resolve(RunDirectory.METRICS_FILE), RunDirectory.METRICS_FILE);
        }
    }

    /** Rank 0's marker in output_dir (local or published); returns what went wrong, or null. */
    private String writeMarker(Path outputDir, String token) {
        try {
            if (published != null) {
                published.writeString(REACH_MARKER, token);
                return null;
            }
            Files.createDirectories(outputDir);
            AtomicFiles.writeString(outputDir.resolve(REACH_MARKER), token);
            return null;
        } catch (IOException | RuntimeException e) {
            return "cannot write " + REACH_MARKER + " under " + (published != null ? published.uri()
                    : outputDir) + ": " + e;
        }
    }

    private String readMarker(Path outputDir) throws IOException {
        return published != null ? published.readString(REACH_MARKER)
                : Files.readString(outputDir.resolve(REACH_MARKER));
    }

    /**
     * Every task reads back the marker rank 0 wrote into output_dir. Followers read the checkpoints rank 0 writes
     * there when a stage is retried, so a directory that only rank 0's host sees would fail late; this fails before
     * any model is loaded, naming each executor that cannot see it. This is the group's first gather.
     */
    private void checkReachable(TaskCollective collective, Path outputDir, String token, String written,
            String address) {
        String location = published != null ? published.uri() : outputDir.toString();
        String problem = written;
        if (collective.rank() != 0) {
            try {
                String seen = readMarker(outputDir);
                problem = seen.equals(token) ? null : location + " holds another stage's marker (" + seen + ")";
            } catch (IOException | RuntimeException e) {
                problem = "cannot read " + REACH_MARKER + " under " + location + ": " + e;
            }
        }
        List<byte[]> all = collective.allGather((problem == null ? "" : address + " (rank " + collective.rank()
                + "): " + problem).getBytes(StandardCharsets.UTF_8));
        if (collective.rank() == 0) {
            try {
                if (published != null) {
                    published.delete(REACH_MARKER);
                } else {
                    Files.deleteIfExists(outputDir.resolve(REACH_MARKER));
                }
            } catch (IOException | RuntimeException e) {
                // The marker is hidden and rewritten by the next run; nothing depends on its removal.
            }
        }
        List<String> unreachable = new ArrayList<>();
        for (byte[] p : all) {
            if (p.length > 0) {
                unreachable.add(new String(p, StandardCharsets.UTF_8));
            }
        }
        if (!unreachable.isEmpty()) {
            throw new PetException("output_dir " + location + " is not reachable from every executor: "
                    + String.join("; ", unreachable) + (published != null ? ". Every executor needs the Hadoop "
                    + "file system of the URI and permission to use it" : ". Use a path on a file system that "
                    + "every executor mounts at the same place, or a Hadoop FileSystem URI (hdfs://, s3a://)"));
        }
    }
}
