package dev.pet.spark;

import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.train.DefaultPetEngine;
import dev.pet.runtime.train.TextScorer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Batch scoring over a {@code Dataset<Row>}: every row's text column gets its mean token loss, mean token
 * log-likelihood and predicted-token count under the model with a trained adapter, as {@code pet eval} measures a
 * jsonl record holding that text alone ({@link TextScorer}). Each executor JVM compiles the eval graph once and reuses
 * it for all its partitions and tasks.
 */
public final class SparkScore {
    /** The columns added, after the input's own. */
    public static final String LOSS = "loss";
    public static final String MEAN_LOG_LIKELIHOOD = "mean_log_likelihood";
    public static final String TOKENS = "tokens";

    private SparkScore() {
    }

    /**
     * {@code rows} with the columns {@value #LOSS} (double; null for a row too short to predict a token),
     * {@value #MEAN_LOG_LIKELIHOOD} (double; likewise) and {@value #TOKENS} (long). A null text scores as "".
     *
     * @param adapter an adapter directory reachable from every executor, or null for the run's final adapter
     *                ({@code output_dir/adapter}) when it exists
     */
    public static Dataset<Row> score(Dataset<Row> rows, String textColumn, RunConfig config, Path adapter) {
        StructType schema = rows.schema();
        int column = Rows.stringColumn(schema, textColumn, "the texts to score");
        StructType out = schema.add(LOSS, DataTypes.DoubleType, true)
                .add(MEAN_LOG_LIKELIHOOD, DataTypes.DoubleType, true)
                .add(TOKENS, DataTypes.LongType, false);
        Task task = new Task(SparkFinetune.yaml(config), adapter == null ? null : adapter.toString(), column);
        return rows.mapPartitions(task, Encoders.row(out));
    }

    private static final class Task implements MapPartitionsFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final String configYaml;
        private final String adapter;
        private final int column;

        Task(String configYaml, String adapter, int column) {
            this.configYaml = configYaml;
            this.adapter = adapter;
            this.column = column;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> rows) {
            TextScorer scorer = ExecutorModels.get(TextScorer.class, configYaml, adapter,
                    DefaultPetEngine::openScorer);
            List<Row> out = new ArrayList<>();
            while (rows.hasNext()) {
                Row r = rows.next();
                TextScorer.Score s;
                // One compiled graph per JVM, shared by the executor's concurrent tasks: one row at a time.
                synchronized (scorer) {
                    s = scorer.score(r.isNullAt(column) ? "" : r.getString(column));
                }
                Double loss = s.tokens() == 0 ? null : s.loss();
                out.add(Rows.append(r, loss, loss == null ? null : -loss, s.tokens()));
            }
            return out.iterator();
        }
    }
}
