package dev.pet.spark;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.pet.api.PetException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DataParallelReplica;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.IntStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * Data-parallel fine-tuning as one Spark barrier stage: {@code runner_config.data_parallel} tasks start together, each
 * runs a {@link DataParallelReplica} of the run (rank 0 writes the run directory), and the gradients are averaged
 * every micro-batch, exchanged as {@link Exchange} says ({@code spark.pet.exchange}: a ring of TCP connections between
 * the tasks by default). If a task fails, Spark retries the whole stage
 * ({@code spark.stage.maxConsecutiveAttempts}, 4 by default) and the new tasks resume from the newest checkpoint.
 */
public final class SparkFinetune {
    private SparkFinetune() {
    }

    /** The replicas' reports, by rank; rank 0's holds how the run ended. */
    public record Result(List<ReplicaStats> replicas) {
        public Result {
            replicas = List.copyOf(replicas);
        }

        public ReplicaStats leader() {
            return replicas.get(0);
        }
    }

    /**
     * Runs {@code config} on {@code spark}. Its data paths must be reachable from every executor; its output_dir is a
     * path every executor mounts, or a Hadoop FileSystem URI that rank 0 publishes the run directory to
     * ({@link HadoopRunDirectory}).
     */
    public static Result run(JavaSparkContext spark, RunConfig config) {
        return run(spark, config, FaultInjection.NONE);
    }

    /**
     * Runs {@code config} on the texts of {@code train}'s column {@code textColumn} instead of its
     * {@code train_dataset}: read them with Spark from anywhere Spark reads (json lines, parquet, text; local paths or
     * Hadoop file system URIs). They are tokenized on the executors into output_dir (see {@link SparkData}); with the
     * same texts in the same order the run is the one a single process makes over a jsonl file of those texts.
     */
    public static Result run(JavaSparkContext spark, RunConfig config, Dataset<Row> train, String textColumn) {
        Objects.requireNonNull(train, "train");
        Objects.requireNonNull(textColumn, "textColumn");
        RunConfig tokens = SparkData.trainOn(train, textColumn, config);
        if (config.publishedTo().isEmpty()) {
            return run(spark, tokens);
        }
        // The tokens went to the driver's staging directory: publish them for the replicas to fetch.
        java.nio.file.Path local = config.outputDir().resolve(SparkData.TOKENS_FILE);
        try (HadoopRunDirectory published = published(spark, config)) {
            published.publish(local, SparkData.TOKENS_FILE);
        } finally {
            try {
                java.nio.file.Files.deleteIfExists(local);
            } catch (java.io.IOException e) {
                // a leftover in the driver's staging directory under java.io.tmpdir; the run does not read it
            }
        }
        return run(spark, tokens, FaultInjection.NONE, SparkData.TOKENS_FILE);
    }

    static Result run(JavaSparkContext spark, RunConfig config, FaultInjection faults) {
        return run(spark, config, faults, null);
    }

    private static HadoopRunDirectory published(JavaSparkContext spark, RunConfig config) {
        return HadoopRunDirectory.of(config.publishedTo().orElseThrow(), spark.hadoopConfiguration());
    }

    /** {@code publishedData}: a file of the published run directory the replicas fetch and train on, or null. */
    private static Result run(JavaSparkContext spark, RunConfig config, FaultInjection faults, String publishedData) {
        Objects.requireNonNull(spark, "spark");
        Objects.requireNonNull(config, "config");
        int replicas = config.runner().dataParallel();
        int slots = spark.defaultParallelism();
        if (replicas > slots) {
            throw new PetException(refusal(replicas, slots, spark.master()));
        }
        if (config.train().isEmpty()) {
            throw new PetException("train_dataset is missing: finetune needs data to train on");
        }
        String plugins = DataParallelReplica.pluginVersions(PluginRegistry.discover(PluginKind.ALL,
                SparkFinetune.class.getClassLoader(), null));
        Exchange exchange = Exchange.parse(spark.getConf().get(Exchange.SETTING, Exchange.RING.toString()));
        HadoopRunDirectory published = null;
        if (config.publishedTo().isPresent()) {
            published = published(spark, config);
            try {
                published.prepare(config);
            } finally {
                published.close();
            }
        }
        ReplicaTask task = new ReplicaTask(yaml(config), plugins, exchange, faults, published, publishedData);
        List<Integer> ranks = IntStream.range(0, replicas).boxed().toList();
        spark.setJobDescription("PET Runtime data-parallel fine-tuning of " + location(config) + " (" + replicas
                + " replicas, " + exchange + " exchange)");
        List<ReplicaStats> stats;
        try {
            stats = new ArrayList<>(Barrier.mapPartitions(spark.parallelize(ranks, replicas), task,
                    ReplicaStats.class).collect());
        } catch (Exception e) { // Spark's job failures are checked SparkExceptions, thrown undeclared
            String m = String.valueOf(e.getMessage());
            if (m.contains("SPARK-24819") || m.contains("BARRIER_SLOTS")) {
                throw new PetException(refusal(replicas, slots, spark.master()), e);
            }
            throw new PetException("data-parallel fine-tuning failed on Spark: " + m, e);
        }
        stats.sort(Comparator.comparingInt(ReplicaStats::rank));
        return new Result(stats);
    }

    /** Where the run directory is: output_dir as written, a path or a URI. */
    static String location(RunConfig config) {
        return config.publishedTo().map(Object::toString).orElse(config.outputDir().toString());
    }

    private static String refusal(int replicas, int slots, String master) {
        return "runner_config.data_parallel is " + replicas + " but Spark (" + master + ") has " + slots + " task "
                + "slots: a barrier stage starts all its tasks at once, so it needs one free slot per replica. Lower "
                + "data_parallel to at most " + slots + " or give the cluster more executors or cores";
    }

    /** The resolved config as YAML: what every task parses, so all replicas train exactly the same run. */
    static String yaml(RunConfig config) {
        try {
            return new ObjectMapper(new YAMLFactory()).writeValueAsString(RunConfigLoader.toMap(config));
        } catch (JsonProcessingException e) {
            throw new PetException("cannot render the run config for the executors: " + e.getOriginalMessage(), e);
        }
    }
}
