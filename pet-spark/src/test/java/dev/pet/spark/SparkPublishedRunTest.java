package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;
import dev.pet.runtime.checkpoint.CheckpointManager;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * output_dir as a Hadoop FileSystem URI, here {@code file:} through Hadoop's LocalFileSystem: the replicas train in
 * local staging directories, rank 0 publishes the run directory, and a stage retried after rank 0 died fetches the
 * newest checkpoint from the URI and ends with the reference run's adapter.
 */
class SparkPublishedRunTest {
    @TempDir
    static Path dir;
    static Path reference;
    static JavaSparkContext context;

    @BeforeAll
    static void setUp() throws Exception {
        reference = SparkFixtures.referenceRun();
        context = JavaSparkContext.fromSparkContext(SparkFixtures.session().sparkContext());
    }

    /** The fixtures' run of 2 replicas × batch 2, with output_dir {@code uri}. */
    static RunConfig config(String uri, String... overrides) throws Exception {
        Path yaml = dir.resolve("run.yaml");
        Files.writeString(yaml, DataParallelFixtures.yaml(dir.resolve("unused"), SparkFixtures.corpus(), 2, 2));
        List<String> all = new java.util.ArrayList<>(List.of("output_dir=" + uri));
        all.addAll(List.of(overrides));
        return RunConfigLoader.load(yaml, all);
    }

    @Test
    void aRunPublishedToAFileUriSurvivesItsLeaderDyingAndHoldsTheReferenceRun() throws Exception {
        Path published = dir.resolve("published");
        RunConfig config = config(published.toUri().toString());
        // Rank 0, which publishes, dies before gather 19 (step 6's first exchange, two steps after checkpoint-4);
        // the retried stage starts in new staging directories, fetching checkpoint-4 from the URI.
        SparkFinetune.Result result = SparkFinetune.run(context, config, new FaultInjection(0, 19));
        assertEquals("COMPLETED", result.leader().stopReason());
        assertEquals(10, result.leader().finalStep());
        assertEquals(6, result.leader().steps(), "the retried stage resumed from checkpoint-4");
        SparkFixtures.assertSameRun(reference, published);

        // A valid run directory: the reference's checkpoints, each intact for run.json's run id; nothing hidden left.
        String runId = new ObjectMapper().readTree(published.resolve("run.json").toFile()).path("run_id").asText();
        List<String> checkpoints = checkpoints(published);
        assertEquals(checkpoints(reference), checkpoints);
        for (String c : checkpoints) {
            long step = Long.parseLong(c.substring("checkpoint-".length()));
            assertEquals(List.of(), CheckpointManager.verify(published.resolve(c), runId, step), c);
        }
        try (Stream<Path> all = Files.walk(published)) {
            List<String> hidden = all.map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith(".") || n.endsWith(".crc")).toList();
            assertEquals(List.of(), hidden, "temporaries, markers or checksum files left in the URI");
        }
        try (Stream<Path> staged = Files.exists(config.outputDir()) ? Files.list(config.outputDir()) : Stream.of()) {
            assertEquals(List.of(), staged.toList(), "staging directories left behind");
        }

        // A resuming stage skips a published checkpoint whose copy does not match its manifest, as a local resume does.
        String newest = checkpoints.get(checkpoints.size() - 1);
        Path damaged = published.resolve(newest).resolve(CheckpointManager.STATE_FILE);
        Files.writeString(damaged, Files.readString(damaged).replace("\"step\"", "\"step\" "));
        Path staging = dir.resolve("fetched");
        try (HadoopRunDirectory run = HadoopRunDirectory.of(config.outputUri(),
                new org.apache.hadoop.conf.Configuration())) {
            HadoopRunDirectory.Resume resume = run.fetchForResume(staging).orElseThrow();
            assertEquals(new HadoopRunDirectory.Resume(checkpoints.get(checkpoints.size() - 2), runId), resume);
        }
        assertTrue(Files.isRegularFile(staging.resolve("run.json")));
        assertFalse(Files.exists(staging.resolve(newest)), "the damaged copy is not kept");

        // The URI now holds a run: a fresh run into it is refused on the driver, naming it and what it holds.
        ConfigException again = assertThrows(ConfigException.class, () -> SparkFinetune.run(context, config));
        assertTrue(again.getMessage().startsWith("output_dir: " + config.outputUri() + " holds another run's files: "
                + "adapter, checkpoint-"), again.getMessage());
        RunConfig changed = config(published.toUri().toString(), "resume_training=true",
                "lr_schedule.learning_rate=1.0e-2");
        ConfigException resume = assertThrows(ConfigException.class, () -> SparkFinetune.run(context, changed));
        assertTrue(resume.getMessage().startsWith("output_dir: cannot resume the run in " + changed.outputUri()
                + ": the config changed"), resume.getMessage());
    }

    @Test
    void aUriTheDriverCannotReachIsNamed() throws Exception {
        Path file = SparkFixtures.corpus();
        RunConfig underAFile = config(file.toUri() + "/run");
        PetException e = assertThrows(PetException.class, () -> SparkFinetune.run(context, underAFile));
        assertTrue(e.getMessage().startsWith("output_dir: " + underAFile.outputUri() + " is not reachable from the "
                + "driver or not writable ("), e.getMessage());
        RunConfig unknown = config("nosuchfs://host/runs/a");
        PetException scheme = assertThrows(PetException.class, () -> SparkFinetune.run(context, unknown));
        assertTrue(scheme.getMessage().startsWith("output_dir: nosuchfs://host/runs/a is not reachable from the "
                + "driver"), scheme.getMessage());
        assertTrue(scheme.getMessage().contains("nosuchfs"), scheme.getMessage());
    }

    private static List<String> checkpoints(Path run) throws Exception {
        try (Stream<Path> list = Files.list(run)) {
            return list.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("checkpoint-")).sorted()
                    .toList();
        }
    }
}
