package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DataParallelFixtures;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;

/**
 * What the module's test classes share in their fork: the corpus and the single-process reference run (trained once)
 * of pet-runtime's {@link DataParallelFixtures}, and one local Spark session.
 */
final class SparkFixtures {
    private static Path work;
    private static Path reference;
    private static SparkSession session;

    private SparkFixtures() {
    }

    /** The fork's scratch directory (also {@code user.home}, for the token cache), removed when the JVM exits. */
    static synchronized Path work() throws IOException {
        if (work == null) {
            work = Files.createTempDirectory("pet-spark-tests");
            System.setProperty("user.home", work.resolve("home").toString());
            Path root = work;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(root)));
        }
        return work;
    }

    /** The corpus every test trains on. */
    static synchronized Path corpus() throws Exception {
        Path corpus = work().resolve("corpus.txt");
        return Files.exists(corpus) ? corpus : DataParallelFixtures.corpus(work());
    }

    /**
     * The reference run: one process, batch 4, the {@link DataParallelFixtures#yaml} run; its metrics.jsonl and
     * adapter are what the data-parallel runs must reproduce, and its adapter is what the generation tests use.
     */
    static synchronized Path referenceRun() throws Exception {
        if (reference == null) {
            Path out = work().resolve("reference");
            Files.createDirectories(out);
            Files.writeString(out.resolve("run.yaml"), DataParallelFixtures.yaml(out, corpus(), 4, 1));
            Trainer.fromYaml(out.resolve("run.yaml")).finetune();
            reference = out;
        }
        return reference;
    }

    /** The reference run's config; its adapter/ is what the batch-inference tests use. */
    static RunConfig referenceConfig() throws Exception {
        return RunConfigLoader.load(referenceRun().resolve("run.yaml"), List.of());
    }

    /** An environment for calling the engine directly, as the CLI does. */
    static RunEnvironment environment() {
        return new RunEnvironment(PluginRegistry.discover(PluginKind.ALL, SparkFixtures.class.getClassLoader(), null),
                new TrainingListeners(List.of()), TokenCache.defaultCache(), new PrintStream(System.err, true));
    }

    /**
     * The module's one Spark session, shared by the test classes of the fork and stopped by Spark's shutdown hook:
     * three task slots, a failed barrier stage retried once, no UI, few shuffle partitions and quiet logs.
     */
    static synchronized SparkSession session() {
        if (session == null) {
            session = SparkSession.builder().master("local[3,2]").appName("pet-spark tests")
                    .config("spark.ui.enabled", "false")
                    .config("spark.ui.showConsoleProgress", "false")
                    .config("spark.sql.shuffle.partitions", "2")
                    .config("spark.default.parallelism", "3")
                    .config("spark.stage.maxConsecutiveAttempts", "2")
                    .config("spark.driver.host", "127.0.0.1")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .getOrCreate();
            session.sparkContext().setLogLevel("WARN");
        }
        return session;
    }

    /** The losses a run logged, step by step. */
    static List<Double> losses(Path run) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<Double> out = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss")) {
                out.add(n.get("loss").asDouble());
            }
        }
        return out;
    }

    /** {@code run} logged the losses of {@code expected} (1e-6 relative) and ended with its adapter (1e-6). */
    static void assertSameRun(Path expected, Path run) throws IOException {
        List<Double> want = losses(expected);
        List<Double> got = losses(run);
        assertEquals(want.size(), got.size(), "logged steps");
        for (int i = 0; i < got.size(); i++) {
            double e = want.get(i);
            assertEquals(e, got.get(i), 1e-6 * Math.abs(e), "loss at step " + (i + 1));
        }
        Map<String, Tensor> a = SafeTensors.read(expected.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE));
        Map<String, Tensor> b = SafeTensors.read(run.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE));
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            double[] x = a.get(k).toDoubleArray();
            double[] y = b.get(k).toDoubleArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(x[i], y[i], 1e-6, k + "[" + i + "]");
            }
        }
    }

    private static void delete(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            // best effort at exit: the directory is under java.io.tmpdir
        }
    }
}
