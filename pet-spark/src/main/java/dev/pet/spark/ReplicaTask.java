package dev.pet.spark;

import dev.pet.api.PetException;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
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
 * {@link Exchange}, checks that it reaches the run directory, then runs one {@link DataParallelReplica}. A retried stage (attempt &gt; 0) resumes from the newest checkpoint.
 */
final class ReplicaTask implements FlatMapFunction<Iterator<Integer>, ReplicaStats> {
    private static final long serialVersionUID = 1L;
    private static final String REACH_MARKER = ".pet-reach";

    private final String configYaml;
    private final String driverPlugins;
    private final Exchange exchange;
    private final FaultInjection faults;

    ReplicaTask(String configYaml, String driverPlugins, Exchange exchange, FaultInjection faults) {
        this.configYaml = configYaml;
        this.driverPlugins = driverPlugins;
        this.exchange = exchange;
        this.faults = faults;
    }

    @Override
    public Iterator<ReplicaStats> call(Iterator<Integer> partition) {
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
        List<String> overrides = context.stageAttemptNumber() > 0 ? List.of("resume_training=true", "overwrite_output_dir=false") : List.of();
        RunConfig config = RunConfigLoader.parse(configYaml, "the Spark driver's run config", overrides);
        String marker = "stage " + context.stageId() + " attempt " + context.stageAttemptNumber();
        // Rank 0 writes the marker before the tasks meet in open(), so every task can read it right after.
        String problem = rank == 0 ? writeMarker(config.outputDir(), marker) : null;
        DataParallelReplica.Report report;
        try (TaskCollective collective = exchange.open(context, faults)) {
            checkReachable(collective, config.outputDir(), marker, problem, address);
            report = Trainer.of(config).finetuneReplica(collective);
        }
        TrainingSummary s = report.summary();
        return List.of(new ReplicaStats(rank, address, report.steps(), report.stepNanos(), report.exchangedBytes(),
                s == null ? -1 : s.steps(), s == null ? Double.NaN : s.finalLoss(),
                s == null ? null : s.reason().name())).iterator();
    }

    /** Rank 0's marker in output_dir; returns what went wrong, or null. */
    private static String writeMarker(Path outputDir, String token) {
        Path marker = outputDir.resolve(REACH_MARKER);
        try {
            Files.createDirectories(outputDir);
            AtomicFiles.writeString(marker, token);
            return null;
        } catch (IOException e) {
            return "cannot write " + marker + ": " + e;
        }
    }

    /**
     * Every task reads back the marker rank 0 wrote into output_dir. Followers read the checkpoints rank 0 writes
     * there when a stage is retried, so a directory that only rank 0's host sees would fail late; this fails before
     * any model is loaded, naming each executor that cannot see it. This is the group's first gather.
     */
    private static void checkReachable(TaskCollective collective, Path outputDir, String token, String written,
            String address) {
        Path marker = outputDir.resolve(REACH_MARKER);
        String problem = written;
        if (collective.rank() != 0) {
            try {
                String seen = Files.readString(marker);
                problem = seen.equals(token) ? null : marker + " holds another stage's marker (" + seen + ")";
            } catch (IOException e) {
                problem = "cannot read " + marker + ": " + e;
            }
        }
        List<byte[]> all = collective.allGather((problem == null ? "" : address + " (rank " + collective.rank()
                + "): " + problem).getBytes(StandardCharsets.UTF_8));
        if (collective.rank() == 0) {
            try {
                Files.deleteIfExists(marker);
            } catch (IOException e) {
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
            throw new PetException("output_dir " + outputDir + " is not reachable from every executor: "
                    + String.join("; ", unreachable) + ". Use a path on a file system that every executor mounts "
                    + "at the same place");
        }
    }
}
