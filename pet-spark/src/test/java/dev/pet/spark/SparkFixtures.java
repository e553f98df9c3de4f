package dev.pet.spark;

import dev.pet.runtime.Trainer;
import dev.pet.runtime.train.DataParallelFixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
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

    private static void delete(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            // best effort at exit: the directory is under java.io.tmpdir
        }
    }
}
