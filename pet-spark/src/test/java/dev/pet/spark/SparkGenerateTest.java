package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.generate.TextGenerator;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.train.DefaultPetEngine;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Batch generation over a Dataset against {@code pet generate}'s generator called one prompt at a time. */
class SparkGenerateTest {
    static RunConfig config;
    static SparkSession spark;

    @BeforeAll
    static void setUp() throws Exception {
        config = SparkFixtures.referenceConfig();
        spark = SparkFixtures.session();
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
        // Three partitions without a shuffle: Spark SQL's first shuffle and sort cost seconds of code generation.
        Dataset<Row> prompts = spark.createDataFrame(JavaSparkContext.fromSparkContext(spark.sparkContext())
                .parallelize(rows, 3), schema);
        // Rows of different lengths share batches (left padding): their text must not change.
        SparkGenerate.Options options = SparkGenerate.Options.greedy(4);
        List<Row> generated = SparkGenerate.generate(prompts, "prompt", "completion", config, null, options)
                .collectAsList();
        assertEquals(IntStream.range(0, 100).boxed().toList(),
                generated.stream().map(r -> r.getInt(0)).sorted().toList(), "every row once");

        RunEnvironment env = SparkFixtures.environment();
        Map<String, String> alone = new HashMap<>(); // each distinct prompt generated on its own, once
        try (DefaultPetEngine.OpenGenerator generator = DefaultPetEngine.openGenerator(config, null, env)) {
            for (Row r : generated) {
                String expected = alone.computeIfAbsent(r.getString(1), p -> generator.generator().complete(
                        List.of(p), options.generation(), List.of(), null, TextGenerator.Overflow.TRUNCATE_LEFT,
                        w -> { }, TextSink.none()).get(0).text());
                assertEquals(expected, r.getString(2), "row " + r.getInt(0) + " (" + r.getString(1) + ")");
            }
        }
        long distinct = generated.stream().map(r -> r.getString(2)).distinct().count();
        assertTrue(distinct > 1, "the completions differ from row to row: " + distinct + " distinct");
    }
}
