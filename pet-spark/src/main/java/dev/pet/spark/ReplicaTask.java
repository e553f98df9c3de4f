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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;

/**
 * The body of one barrier task: checks that this executor runs the driver's plugins and reaches the run directory,
 * then runs one {@link DataParallelReplica}. A retried stage (attempt &gt; 0) resumes from the newest checkpoint.
 */
final class ReplicaTask implements FlatMapFunction<Iterator<Integer>, ReplicaStats> {
    private static final long serialVersionUID = 1L;
    private static final String REACH_MARKER = ".pet-reach";

    private final String configYaml;
    private final String driverPlugins;
    private final FaultInjection faults;

    ReplicaTask(String configYaml, String driverPlugins, FaultInjection faults) {
        this.configYaml = configYaml;
        this.driverPlugins = driverPlugins;
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
        checkReachable(context, config.outputDir(), address);
        DataParallelReplica.Report report = Trainer.of(config).finetuneReplica(new BarrierCollective(context, faults));
        TrainingSummary s = report.summary();
        return List.of(new ReplicaStats(rank, address, report.steps(), report.stepNanos(), report.exchangedBytes(),
                s == null ? -1 : s.steps(), s == null ? Double.NaN : s.finalLoss(),
                s == null ? null : s.reason().name())).iterator();
    }

    /**
     * Rank 0 writes a marker into output_dir; every task must read it back at the same path. Followers read the
     * checkpoints rank 0 writes there when a stage is retried, so a directory that only rank 0's host sees would
     * fail late; this fails before any model is loaded, naming each executor that cannot see it.
     */
    private static void checkReachable(BarrierTaskContext context, Path outputDir, String address) {
        Path marker = outputDir.resolve(REACH_MARKER);
        String token = "stage " + context.stageId() + " attempt " + context.stageAttemptNumber();
        String problem = null;
        if (context.partitionId() == 0) {
            try {
                Files.createDirectories(outputDir);
                AtomicFiles.writeString(marker, token);
            } catch (IOException e) {
                problem = "cannot write " + marker + ": " + e;
            }
        }
        context.barrier();
        if (problem == null) {
            try {
                String seen = Files.readString(marker);
                problem = seen.equals(token) ? null : marker + " holds another stage's marker (" + seen + ")";
            } catch (IOException e) {
                problem = "cannot read " + marker + ": " + e;
            }
        }
        String[] all = context.allGather(problem == null ? "" : address + " (rank " + context.partitionId() + "): "
                + problem);
        if (context.partitionId() == 0) {
            try {
                Files.deleteIfExists(marker);
            } catch (IOException e) {
                // The marker is hidden and rewritten by the next run; nothing depends on its removal.
            }
        }
        List<String> unreachable = new ArrayList<>();
        for (String p : all) {
            if (!p.isEmpty()) {
                unreachable.add(p);
            }
        }
        if (!unreachable.isEmpty()) {
            throw new PetException("output_dir " + outputDir + " is not reachable from every executor: "
                    + String.join("; ", unreachable) + ". Use a path on a file system that every executor mounts "
                    + "at the same place");
        }
    }
}
