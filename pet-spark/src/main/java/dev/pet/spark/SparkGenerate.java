package dev.pet.spark;

import dev.pet.engine.GenerationConfig;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextGenerator;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Batch generation over a {@code Dataset<Row>}: every row's prompt column gets a completion column, generated as
 * {@code pet generate} would for that prompt alone (the sampler is seeded per sequence, so batching rows does not
 * change their text). Each executor JVM compiles the model once and reuses it for all its partitions and tasks.
 */
public final class SparkGenerate {
    private SparkGenerate() {
    }

    /**
     * What to generate.
     *
     * @param maxNewTokens      tokens to add to each prompt
     * @param temperature       0 for greedy decoding
     * @param topK              0 for no top-k filter
     * @param topP              1 for no nucleus filter
     * @param repetitionPenalty 1 for none
     * @param seed              the sampling seed (per sequence)
     * @param stop              strings that end a completion
     * @param batchSize         rows generated together
     */
    public record Options(int maxNewTokens, double temperature, int topK, double topP, double repetitionPenalty,
            long seed, List<String> stop, int batchSize) implements Serializable {
        public Options {
            stop = List.copyOf(stop);
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be >= 1, found " + batchSize);
            }
            generation(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed); // validates
        }

        /** Greedy decoding of {@code maxNewTokens} tokens, 8 rows at a time. */
        public static Options greedy(int maxNewTokens) {
            return new Options(maxNewTokens, 0, 0, 1, 1, 0, List.of(), 8);
        }

        GenerationConfig generation() {
            return generation(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed);
        }

        private static GenerationConfig generation(int maxNewTokens, double temperature, int topK, double topP,
                double repetitionPenalty, long seed) {
            return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, -1);
        }
    }

    /**
     * {@code prompts} with a string column {@code outputColumn} holding each row's completion.
     *
     * @param adapter an adapter directory reachable from every executor, or null for the run's final adapter
     *                ({@code output_dir/adapter}) when it exists
     */
    public static Dataset<Row> generate(Dataset<Row> prompts, String promptColumn, String outputColumn,
            RunConfig config, Path adapter, Options options) {
        Objects.requireNonNull(options, "options");
        StructType schema = prompts.schema();
        int column = Rows.stringColumn(schema, promptColumn, "the prompts");
        StructType out = schema.add(outputColumn, DataTypes.StringType, true);
        Task task = new Task(SparkFinetune.yaml(config), adapter == null ? null : adapter.toString(), column, options);
        return prompts.mapPartitions(task, Encoders.row(out));
    }

    private static final class Task implements MapPartitionsFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final String configYaml;
        private final String adapter;
        private final int column;
        private final Options options;

        Task(String configYaml, String adapter, int column, Options options) {
            this.configYaml = configYaml;
            this.adapter = adapter;
            this.column = column;
            this.options = options;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> rows) {
            DefaultPetEngine.OpenGenerator model = ExecutorModels.get(DefaultPetEngine.OpenGenerator.class,
                    configYaml, adapter, DefaultPetEngine::openGenerator);
            List<Row> out = new ArrayList<>();
            List<Row> batch = new ArrayList<>(options.batchSize());
            while (rows.hasNext()) {
                batch.add(rows.next());
                if (batch.size() == options.batchSize() || !rows.hasNext()) {
                    out.addAll(complete(model.generator(), batch));
                    batch.clear();
                }
            }
            return out.iterator();
        }

        private List<Row> complete(TextGenerator generator, List<Row> batch) {
            List<String> prompts = new ArrayList<>(batch.size());
            for (Row r : batch) {
                prompts.add(r.isNullAt(column) ? "" : r.getString(column));
            }
            List<Completion> done;
            // One compiled model per JVM, shared by the executor's concurrent tasks: one batch at a time.
            synchronized (generator) {
                done = generator.complete(prompts, options.generation(), options.stop(), null,
                        TextGenerator.Overflow.TRUNCATE_LEFT, w -> { }, TextSink.none());
            }
            List<Row> out = new ArrayList<>(batch.size());
            for (int i = 0; i < batch.size(); i++) {
                out.add(Rows.append(batch.get(i), done.get(i).text()));
            }
            return out;
        }
    }
}
