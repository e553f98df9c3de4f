package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training data read with Spark (json lines, and parquet with another column name, through {@code file:} URIs)
 * against one process reading the same texts from a jsonl file: two tasks of batch 2 make the run of one process of
 * batch 4.
 */
class SparkDataTest {
    @TempDir
    static Path dir;
    static Path jsonl;
    static List<String> texts;
    static Path reference;
    static SparkSession spark;
    static JavaSparkContext context;

    @BeforeAll
    static void setUp() throws Exception {
        spark = SparkFixtures.session();
        context = JavaSparkContext.fromSparkContext(spark.sparkContext());
        texts = new ArrayList<>();
        for (String line : Files.readAllLines(SparkFixtures.corpus())) {
            if (!line.isBlank()) {
                texts.add(line);
            }
        }
        StringBuilder sb = new StringBuilder();
        ObjectMapper json = new ObjectMapper();
        for (String t : texts) {
            sb.append(json.writeValueAsString(Map.of("text", t))).append('\n');
        }
        jsonl = dir.resolve("train.jsonl");
        Files.writeString(jsonl, sb);
        reference = dir.resolve("reference");
        Trainer.of(config(reference, 4, 1)).finetune();
    }

    /** The fixtures' run, on the jsonl file. */
    static RunConfig config(Path out, int batchSize, int replicas) throws Exception {
        Files.createDirectories(out);
        Files.writeString(out.resolve("run.yaml"), DataParallelFixtures.yaml(out, SparkFixtures.corpus(), batchSize,
                replicas));
        return RunConfigLoader.load(out.resolve("run.yaml"), List.of("train_dataset.data_loader.type=jsonl",
                "train_dataset.data_loader.dataset_dir=" + jsonl));
    }

    @Test
    void jsonLinesReadBySparkTrainAsTheJsonlFileDoes() throws Exception {
        Dataset<Row> train = spark.read().json(jsonl.toUri().toString());
        Path out = dir.resolve("spark-jsonl");
        SparkFinetune.Result result = SparkFinetune.run(context, config(out, 2, 2), train, "text");
        assertEquals(10, result.leader().finalStep());
        assertTrue(Files.isRegularFile(out.resolve(SparkData.TOKENS_FILE)));
        SparkFixtures.assertSameRun(reference, out);
    }

    @Test
    void aParquetColumnReadBySparkTrainsAsTheJsonlFileDoes() throws Exception {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            rows.add(RowFactory.create((long) i, texts.get(i)));
        }
        StructType schema = new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType);
        Path parquet = dir.resolve("train.parquet");
        spark.createDataFrame(context.parallelize(rows, 1), schema).write().parquet(parquet.toUri().toString());
        Dataset<Row> train = spark.read().parquet(parquet.toUri().toString());
        // Published to a file: URI through Hadoop's file system: the tokens travel through it to the replicas too.
        Path out = dir.resolve("spark-parquet");
        Path published = dir.resolve("spark-parquet-published");
        RunConfig config = RunConfigLoader.parse(SparkFinetune.yaml(config(out, 2, 2)), "test",
                List.of("output_dir=" + published.toUri()));
        SparkFinetune.run(context, config, train, "body");
        assertTrue(Files.isRegularFile(published.resolve(SparkData.TOKENS_FILE)));
        SparkFixtures.assertSameRun(reference, published);
    }

    @Test
    void aMissingTextColumnIsNamed() throws Exception {
        Dataset<Row> train = spark.read().json(jsonl.toUri().toString());
        RunConfig config = config(dir.resolve("spark-missing"), 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SparkFinetune.run(context, config, train, "body"));
        assertEquals("the Dataset has no column 'body' (the training texts); its columns: text", e.getMessage());
    }
}
