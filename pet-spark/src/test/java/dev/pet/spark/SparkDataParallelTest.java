package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel fine-tuning on Spark in local mode: two barrier tasks of batch 2 against one process of batch 4 (the
 * reference run, trained once), a task that dies mid-run, and the refusals; the ring exchange against Spark's
 * allGather.
 */
class SparkDataParallelTest {
    @TempDir
    static Path dir;
    static Path corpus;
    static Path reference;
    static SparkSession spark;
    static JavaSparkContext context;

    @BeforeAll
    static void setUp() throws Exception {
        corpus = SparkFixtures.corpus();
        reference = SparkFixtures.referenceRun();
        spark = SparkFixtures.session();
        context = JavaSparkContext.fromSparkContext(spark.sparkContext());
    }

    static RunConfig config(String name, int batchSize, int replicas) throws Exception {
        Path out = dir.resolve(name);
        Files.createDirectories(out);
        Files.writeString(out.resolve("run.yaml"), DataParallelFixtures.yaml(out, corpus, batchSize, replicas));
        return RunConfigLoader.load(out.resolve("run.yaml"), List.of());
    }

    static void assertSameRunAsReference(Path run) throws Exception {
        SparkFixtures.assertSameRun(reference, run);
    }

    @Test
    void twoTasksOfBatchTwoTrainAsOneProcessOfBatchFour() throws Exception {
        // With a Prometheus port, rank 0 serves the run's meters on its executor (as pet finetune does locally).
        RunConfig config = RunConfigLoader.parse(SparkFinetune.yaml(config("spark-2x2", 2, 2)), "test",
                List.of("callbacks.prometheus_port=0"));
        SparkFinetune.Result result = SparkFinetune.run(context, config);
        assertTrue(result.leader().metricsUrl().matches("http://[^/]+:[1-9][0-9]*/metrics"),
                result.leader().metricsUrl());
        assertEquals(null, result.replicas().get(1).metricsUrl());
        assertEquals(2, result.replicas().size());
        assertEquals("COMPLETED", result.leader().stopReason());
        assertEquals(10, result.leader().finalStep());
        for (ReplicaStats r : result.replicas()) {
            assertEquals(10, r.steps(), "replica " + r.rank());
            assertTrue(r.exchangedBytes() > 0);
        }
        assertSameRunAsReference(config.outputDir());
    }

    @Test
    void aTaskThatDiesMidRunIsRetriedAndTheRunEndsWithTheSameAdapter() throws Exception {
        RunConfig config = config("spark-retry", 2, 2);
        // Gathers: 1 run-directory check, 2 handshake, then per step the leader's message and 2 gradient exchanges
        // (2 micro-batches). Gather 19 is step 6's first exchange: two steps after checkpoint-4.
        SparkFinetune.Result result = SparkFinetune.run(context, config, new FaultInjection(1, 19));
        assertEquals("COMPLETED", result.leader().stopReason());
        assertEquals(10, result.leader().finalStep());
        assertEquals(6, result.leader().steps(), "the retried stage resumed from checkpoint-4");
        assertSameRunAsReference(config.outputDir());
    }

    @Test
    void moreReplicasThanTaskSlotsAreRefusedWithTheNumbers() throws Exception {
        RunConfig config = config("spark-too-many", 1, 4);
        PetException e = assertThrows(PetException.class, () -> SparkFinetune.run(context, config));
        assertTrue(e.getMessage().contains("data_parallel is 4 but Spark (local[3,2]) has 3 task slots"),
                e.getMessage());
    }

    @Test
    void aRunDirectoryTheExecutorsCannotWriteIsReportedPerExecutor() throws Exception {
        Path out = corpus.resolve("not-a-directory");
        Path yaml = dir.resolve("unreachable.yaml");
        Files.writeString(yaml, DataParallelFixtures.yaml(out, corpus, 2, 2));
        RunConfig config = RunConfigLoader.load(yaml, List.of());
        Exception e = assertThrows(Exception.class, () -> SparkFinetune.run(context, config));
        assertTrue(e.getMessage().contains("is not reachable from every executor"), e.getMessage());
        assertTrue(e.getMessage().contains("(rank 0): cannot write"), e.getMessage());
    }

    @Test
    void anExecutorWithOtherPluginVersionsIsRefused() throws Exception {
        RunConfig config = config("spark-plugins", 2, 2);
        ReplicaTask task = new ReplicaTask(SparkFinetune.yaml(config), "[lora 0.0.1-elsewhere]", Exchange.RING,
                FaultInjection.NONE);
        Exception e = assertThrows(Exception.class,
                () -> Barrier.mapPartitions(context.parallelize(List.of(0, 1), 2), task, ReplicaStats.class)
                        .collect());
        assertTrue(e.getMessage().contains("has PET Runtime plugins"), e.getMessage());
        assertTrue(e.getMessage().contains("but the driver has [lora 0.0.1-elsewhere]"), e.getMessage());
    }

    @Test
    void theRingGathersWhatSparksAllGatherGathers() {
        // Three tasks: a real ring (next != previous). Payloads from empty to 3 MB, larger than a socket's buffers,
        // so every task sends while its neighbour sends too.
        List<String> reports = Barrier.mapPartitions(context.parallelize(List.of(0, 1, 2), 3), rows -> {
            org.apache.spark.BarrierTaskContext task = org.apache.spark.BarrierTaskContext.get();
            List<String> problems = new ArrayList<>();
            try (TaskCollective ring = Exchange.RING.open(task, FaultInjection.NONE)) {
                for (int size : new int[] {0, 17, 3 << 20}) {
                    List<byte[]> got = ring.allGather(payload(ring.rank(), size));
                    for (int r = 0; r < 3; r++) {
                        if (!java.util.Arrays.equals(payload(r, size), got.get(r))) {
                            problems.add("ring, " + size + " bytes: message of rank " + r + " differs");
                        }
                    }
                }
                List<byte[]> viaRing = ring.allGather(payload(ring.rank(), 1000));
                try (TaskCollective barrier = Exchange.BARRIER.open(task, FaultInjection.NONE)) {
                    List<byte[]> viaSpark = barrier.allGather(payload(barrier.rank(), 1000));
                    for (int r = 0; r < 3; r++) {
                        if (!java.util.Arrays.equals(viaSpark.get(r), viaRing.get(r))) {
                            problems.add("rank " + r + ": ring and allGather differ");
                        }
                    }
                }
            }
            return List.of(task.partitionId() + ":" + problems).iterator();
        }, String.class).collect();
        assertEquals(List.of("0:[]", "1:[]", "2:[]"), reports.stream().sorted().toList());
    }

    static byte[] payload(int rank, int size) {
        byte[] b = new byte[size];
        new java.util.Random(31L * rank + size).nextBytes(b);
        return b;
    }
}
