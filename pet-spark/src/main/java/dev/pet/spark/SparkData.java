package dev.pet.spark;

import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * Training data read with Spark: whatever Spark reads (json lines, parquet, text, from any Hadoop file system) as a
 * {@code Dataset<Row>} with a text column. The executors tokenize the rows as the single-process reader tokenizes
 * jsonl records (each text, then the end-of-text token); the driver streams the partitions in order into one int32
 * {@code .npy} token file in output_dir, written atomically, and the replicas train on it as {@code type: tokens}
 * data. So the windows, and with the same seed and global batch the batch order, are those of a single-process run
 * over a jsonl file holding the same texts in the same order. The order is the Dataset's: one file keeps its line
 * order, but Spark orders the splits of several files by size, so sort those first.
 */
final class SparkData {
    /** Where in output_dir the tokens go (not one of the run's own files, so fresh-run checks ignore it). */
    static final String TOKENS_FILE = "spark-data/train.npy";
    private static final int HEADER = 128;

    private SparkData() {
    }

    /** Tokenizes {@code texts} into output_dir and returns {@code config} training on that token file. */
    static RunConfig trainOn(Dataset<Row> texts, String textColumn, RunConfig config) {
        int column = Rows.stringColumn(texts.schema(), textColumn, "the training texts");
        Path file = config.outputDir().resolve(TOKENS_FILE);
        JavaRDD<int[]> tokens = texts.javaRDD().mapPartitions(new Tokenize(SparkFinetune.yaml(config), column,
                textColumn));
        try {
            AtomicFiles.write(file, channel -> write(channel, tokens.toLocalIterator(), file));
        } catch (IOException e) {
            throw new PetException("cannot write the tokenized training data to " + file + ": " + e, e);
        }
        return RunConfigLoader.parse(SparkFinetune.yaml(config), "the Spark driver's run config", List.of(
                "train_dataset.data_loader.type=tokens", "train_dataset.data_loader.dataset_dir=" + file));
    }

    /** An int32 .npy: a header of {@value #HEADER} bytes written last, when the token count is known. */
    private static void write(FileChannel channel, Iterator<int[]> rows, Path file) throws IOException {
        channel.position(HEADER);
        long count = 0;
        ByteBuffer buffer = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        while (rows.hasNext()) {
            for (int id : rows.next()) {
                if (buffer.remaining() < Integer.BYTES) {
                    buffer.flip();
                    AtomicFiles.writeFully(channel, buffer);
                    buffer.clear();
                }
                buffer.putInt(id);
                count++;
            }
        }
        buffer.flip();
        AtomicFiles.writeFully(channel, buffer);
        if (count == 0) {
            throw new PetException("the training Dataset for " + file + " has no rows to train on");
        }
        String dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (" + count + ",), }";
        StringBuilder header = new StringBuilder(dict);
        while (header.length() < HEADER - 10 - 1) {
            header.append(' ');
        }
        header.append('\n');
        ByteBuffer head = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
        head.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0)
                .putShort((short) (HEADER - 10)).put(header.toString().getBytes(StandardCharsets.US_ASCII)).flip();
        channel.position(0);
        AtomicFiles.writeFully(channel, head);
    }

    /** On an executor: each row's text as its token ids and the end-of-text token. */
    private static final class Tokenize implements FlatMapFunction<Iterator<Row>, int[]> {
        private static final long serialVersionUID = 1L;
        private final String configYaml;
        private final int column;
        private final String columnName;

        Tokenize(String configYaml, int column, String columnName) {
            this.configYaml = configYaml;
            this.column = column;
            this.columnName = columnName;
        }

        @Override
        public Iterator<int[]> call(Iterator<Row> rows) {
            TextTokenizer tokenizer = ExecutorModels.get(TextTokenizer.class, configYaml, null,
                    (config, adapter, env) -> DefaultPetEngine.openTokenizer(config, env));
            long eos = tokenizer.eosTokenId();
            List<int[]> out = new ArrayList<>();
            long row = 0;
            while (rows.hasNext()) {
                Row r = rows.next();
                if (r.isNullAt(column)) {
                    throw new PetException("row " + row + " of partition " + TaskContext.getPartitionId()
                            + " of the training Dataset has no text in column '" + columnName + "'");
                }
                long[] ids = tokenizer.encode(r.getString(column));
                int[] tokens = new int[ids.length + (eos >= 0 ? 1 : 0)];
                for (int i = 0; i < ids.length; i++) {
                    tokens[i] = Math.toIntExact(ids[i]);
                }
                if (eos >= 0) {
                    tokens[ids.length] = Math.toIntExact(eos);
                }
                out.add(tokens);
                row++;
            }
            return out.iterator();
        }
    }
}
