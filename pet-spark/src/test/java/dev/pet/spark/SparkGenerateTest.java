package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.generate.TextGenerator;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Batch generation over a Dataset against {@code pet generate}'s generator called one prompt at a time. */
class SparkGenerateTest {
    @TempDir
    static Path dir;
    static RunConfig config;
    static SparkSession spark;

    @BeforeAll
    static void setUp() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        Path corpus = SparkFixtures.corpus(dir);
        Path out = dir.resolve("run");
        Files.createDirectories(out);
        Files.writeString(out.resolve("run.yaml"), SparkFixtures.yaml(out, corpus, 4, 1));
        config = RunConfigLoader.load(out.resolve("run.yaml"), List.of("runner_config.max_steps=3"));
        Trainer.of(config).finetune(); // the run's adapter/ is what generation uses
        spark = SparkFixtures.session();
    }

    @AfterAll
    static void tearDown() {
        if (spark != null) {
            spark.stop();
        }
    }

    @Test
    void generationOverAHundredRowsEqualsGeneratingEachRowAlone() {
        List<Row> rows = new ArrayList<>();
        String[] words = {"lamp", "keeper", "sea", "wind", "clockwork", "ships", "light", "dusk"};
        for (int i = 0; i < 100; i++) {
            StringBuilder prompt = new StringBuilder("The");
            for (int w = 0; w <= i % 5; w++) {
                prompt.append(' ').append(words[(i + w) % words.length]);
            }
            rows.add(RowFactory.create(i, prompt.toString()));
        }
        StructType schema = new StructType().add("id", DataTypes.IntegerType).add("prompt", DataTypes.StringType);
        Dataset<Row> prompts = spark.createDataFrame(rows, schema).repartition(3);
        // Rows of different lengths share batches (left padding): their text must not change.
        SparkGenerate.Options options = SparkGenerate.Options.greedy(4);
        List<Row> generated = SparkGenerate.generate(prompts, "prompt", "completion", config, null, options)
                .orderBy("id").collectAsList();
        assertEquals(100, generated.size());

        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                getClass().getClassLoader(), null), new TrainingListeners(List.of()), TokenCache.defaultCache(),
                new PrintStream(System.err, true));
        int distinct;
        try (DefaultPetEngine.OpenGenerator alone = DefaultPetEngine.openGenerator(config, null, env)) {
            java.util.Set<String> texts = new java.util.HashSet<>();
            for (Row r : generated) {
                String expected = alone.generator().complete(List.of(r.getString(1)), options.generation(), List.of(),
                        null, TextGenerator.Overflow.TRUNCATE_LEFT, w -> { }, TextSink.none()).get(0).text();
                assertEquals(expected, r.getString(2), "row " + r.getInt(0) + " (" + r.getString(1) + ")");
                texts.add(r.getString(2));
            }
            distinct = texts.size();
        }
        assertTrue(distinct > 1, "the completions differ from row to row: " + distinct + " distinct");
    }
}
