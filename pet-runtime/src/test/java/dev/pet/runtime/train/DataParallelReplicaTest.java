package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel replicas (threads of this JVM sharing a {@link ThreadCollective}) against one process: the split
 * step, the gradient exchange, the leader/follower protocol and the global batch. Spark's barrier tasks run the same
 * replicas (pet-spark).
 */
class DataParallelReplicaTest {
    @TempDir
    static Path dir;
    static Path corpus;

    @BeforeAll
    static void corpus() throws Exception {
        corpus = DataParallelFixtures.corpus(dir);
        System.setProperty("user.home", dir.resolve("home").toString());
    }

    static final class Steps implements TrainingListener {
        final List<StepMetrics> steps = new ArrayList<>();

        @Override
        public void onStep(StepMetrics s) {
            steps.add(s);
        }
    }

    static Path config(String name, int batchSize, int replicas) throws Exception {
        Path out = dir.resolve(name);
        Files.createDirectories(out);
        Files.writeString(out.resolve("run.yaml"), DataParallelFixtures.yaml(out, corpus, batchSize, replicas));
        return out;
    }

    static Map<String, Tensor> adapter(Path out) {
        return SafeTensors.read(out.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE));
    }

    /** Largest absolute difference between two adapters, which must hold the same tensors. */
    static double maxAbsDifference(Map<String, Tensor> a, Map<String, Tensor> b) {
        assertEquals(a.keySet(), b.keySet());
        double max = 0;
        for (String k : a.keySet()) {
            double[] x = a.get(k).toDoubleArray();
            double[] y = b.get(k).toDoubleArray();
            assertEquals(x.length, y.length, k);
            for (int i = 0; i < x.length; i++) {
                max = Math.max(max, Math.abs(x[i] - y[i]));
            }
        }
        return max;
    }

    static void assertSameCurve(List<StepMetrics> expected, List<StepMetrics> actual) {
        assertEquals(expected.size(), actual.size(), "steps");
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.get(i).loss();
            assertEquals(e, actual.get(i).loss(), 1e-6 * Math.abs(e), "loss at step " + (i + 1));
            assertEquals(expected.get(i).learningRate(), actual.get(i).learningRate(), 0, "lr at step " + (i + 1));
        }
    }

    @Test
    void twoReplicasOfBatchTwoTrainAsOneProcessOfBatchFour() throws Exception {
        Path single = config("single", 4, 1);
        Steps one = new Steps();
        Trainer.fromYaml(single.resolve("run.yaml")).withListener(one).finetune();
        assertTrue(one.steps.stream().anyMatch(s -> s.gradNorm() > 0.05), "the run must actually clip");

        Path parallel = config("parallel", 2, 2);
        Steps two = new Steps();
        ThreadCollective group = new ThreadCollective(2);
        List<DataParallelReplica.Report> reports = runReplicas(group, rank ->
                Trainer.fromYaml(parallel.resolve("run.yaml")).withListener(rank == 0 ? two : new Steps())
                        .finetuneReplica(group.replica(rank)));

        assertSameCurve(one.steps, two.steps);
        double diff = maxAbsDifference(adapter(single), adapter(parallel));
        assertTrue(diff <= 1e-6, "final adapters differ by " + diff);
        assertNotNull(reports.get(0).summary());
        assertNull(reports.get(1).summary(), "only rank 0 reports the run");
        for (DataParallelReplica.Report r : reports) {
            assertEquals(10, r.steps());
            assertTrue(r.exchangedBytes() > 0);
        }
        assertTrue(Files.isDirectory(parallel.resolve("checkpoint-8")), "rank 0 writes the checkpoints");
        // Rank 0 reports each replica's compute time per step: measured by that replica, carried in its gradients'
        // header, within the step's wall time; one process reports none.
        for (StepMetrics s : two.steps) {
            assertEquals(2, s.replicaComputeNanos().size(), "step " + s.step());
            for (long nanos : s.replicaComputeNanos()) {
                assertTrue(nanos > 0 && nanos <= s.stepNanos(), "step " + s.step() + ": " + nanos + " of "
                        + s.stepNanos());
            }
        }
        assertTrue(one.steps.stream().allMatch(s -> s.replicaComputeNanos().isEmpty()));
        String metrics = Files.readString(parallel.resolve("metrics.jsonl"));
        assertTrue(metrics.lines().allMatch(l -> l.contains("\"replica_compute_s\":[")), metrics);
    }

    @Test
    void splitStepOnOneReplicaMatchesTheFusedStep() throws Exception {
        Path fused = config("fused", 4, 1);
        Steps a = new Steps();
        Trainer.fromYaml(fused.resolve("run.yaml")).withListener(a).finetune();
        Path split = config("split", 4, 1);
        Steps b = new Steps();
        Trainer.fromYaml(split.resolve("run.yaml")).withListener(b).finetuneReplica(Collective.single());
        assertSameCurve(a.steps, b.steps);
        double diff = maxAbsDifference(adapter(fused), adapter(split));
        assertTrue(diff <= 1e-6, "final adapters differ by " + diff);
    }

    @Test
    void replicasThatDisagreeOnTheConfigStopBeforeTraining() throws Exception {
        Path a = config("disagree-a", 2, 2);
        Path b = config("disagree-b", 1, 2);
        ThreadCollective group = new ThreadCollective(2);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> r0 = pool.submit(() -> Trainer.fromYaml(a.resolve("run.yaml")).finetuneReplica(group.replica(0)));
            Future<?> r1 = pool.submit(() -> Trainer.fromYaml(b.resolve("run.yaml")).finetuneReplica(group.replica(1)));
            for (Future<?> f : List.of(r0, r1)) {
                java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                        f::get);
                assertTrue(e.getCause() instanceof PetException, String.valueOf(e.getCause()));
                assertTrue(e.getCause().getMessage().contains("replica 1 differs from replica 0"),
                        e.getCause().getMessage());
            }
        } finally {
            pool.shutdownNow();
        }
        assertFalse(Files.exists(a.resolve("checkpoint-4")));
    }

    @Test
    void aSingleProcessRunRefusesDataParallelConfigs() throws Exception {
        Path out = config("refused", 2, 2);
        PetException e = assertThrows(PetException.class, () -> Trainer.fromYaml(out.resolve("run.yaml")).finetune());
        assertTrue(e.getMessage().contains("--spark"), e.getMessage());
    }

    interface Replica {
        DataParallelReplica.Report run(int rank) throws Exception;
    }

    /** Runs one replica per rank on its own thread; a failing replica breaks the group and fails the call. */
    static List<DataParallelReplica.Report> runReplicas(ThreadCollective group, Replica replica) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<DataParallelReplica.Report>> futures = new ArrayList<>();
            for (int rank = 0; rank < 2; rank++) {
                int r = rank;
                futures.add(pool.submit(() -> {
                    try {
                        return replica.run(r);
                    } catch (Exception | Error e) {
                        group.abort();
                        throw e;
                    }
                }));
            }
            List<DataParallelReplica.Report> reports = new ArrayList<>();
            for (Future<DataParallelReplica.Report> f : futures) {
                reports.add(f.get());
            }
            return reports;
        } finally {
            pool.shutdownNow();
        }
    }
}
