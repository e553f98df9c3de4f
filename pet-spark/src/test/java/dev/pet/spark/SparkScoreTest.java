package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.train.DefaultPetEngine;
import dev.pet.runtime.train.TextScorer;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Batch scoring over a Dataset against the engine's scorer on one row at a time (which pet-runtime's TextScorerTest
 * checks against {@code pet eval}), with the reference run's trained adapter.
 */
class SparkScoreTest {
    static RunConfig config;
    static SparkSession spark;

    @BeforeAll
    static void setUp() throws Exception {
        config = SparkFixtures.referenceConfig();
        spark = SparkFixtures.session();
    }

    static Dataset<Row> texts(List<String> texts) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            rows.add(RowFactory.create(i, texts.get(i)));
        }
        StructType schema = new StructType().add("id", DataTypes.IntegerType).add("text", DataTypes.StringType);
        return spark.createDataFrame(JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(rows, 3),
                schema);
    }

    @Test
    void everyRowScoresAsTheEngineScoresItAlone() {
        List<String> texts = new ArrayList<>();
        String[] words = {"lamp", "keeper", "sea", "wind", "clockwork", "ships", "light", "dusk", "log", "weather"};
        for (int i = 0; i < 11; i++) {
            StringBuilder text = new StringBuilder("The");
            for (int w = 0; w <= i % 11; w++) { // up to 12 words: some rows are longer than one window of 17
                text.append(' ').append(words[(i * 3 + w) % words.length]);
            }
            texts.add(text.toString());
        }
        texts.add(null); // scores as "": nothing to predict
        List<Row> scored = SparkScore.score(texts(texts), "text", config, null).collectAsList();
        assertEquals(texts.size(), scored.size());

        RunEnvironment env = SparkFixtures.environment();
        try (TextScorer alone = DefaultPetEngine.openScorer(config, null, env)) {
            for (Row r : scored) {
                int id = r.getInt(0);
                String text = texts.get(id);
                TextScorer.Score expected = alone.score(text == null ? "" : text);
                assertEquals(expected.tokens(), r.getLong(r.fieldIndex(SparkScore.TOKENS)), "row " + id);
                if (expected.tokens() == 0) {
                    assertNull(r.get(r.fieldIndex(SparkScore.LOSS)), "row " + id);
                    continue;
                }
                double loss = r.getDouble(r.fieldIndex(SparkScore.LOSS));
                assertEquals(expected.loss(), loss, 1e-6 * expected.loss(), "row " + id + " (" + text + ")");
                assertEquals(-loss, r.getDouble(r.fieldIndex(SparkScore.MEAN_LOG_LIKELIHOOD)), "row " + id);
                assertTrue(loss > 0);
            }
        }
    }

    @Test
    void aMissingTextColumnIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SparkScore.score(texts(List.of("x")), "body", config, null));
        assertEquals("the Dataset has no column 'body' (the texts to score); its columns: id, text", e.getMessage());
    }
}
