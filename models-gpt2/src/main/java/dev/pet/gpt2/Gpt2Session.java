package dev.pet.gpt2;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.pet.api.PetException;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.tensor.DataType;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A GPT-2 graph loaded into ONNX Runtime once and run many times. Inputs are checked in Java before running: token
 * ids inside the vocabulary, sequence (past plus new) no longer than {@code n_positions}, mask and position shapes.
 * Not thread-safe for concurrent runs that share a {@link Gpt2Cache}; otherwise ONNX Runtime sessions may be run
 * from several threads.
 */
public final class Gpt2Session implements AutoCloseable {
    private final OrtEnvironment env;
    private final OrtSession session;
    private final Gpt2Graph graph;

    private Gpt2Session(OrtEnvironment env, OrtSession session, Gpt2Graph graph) {
        this.env = env;
        this.session = session;
        this.graph = graph;
    }

    /** A session with ONNX Runtime's default options (all graph optimisations). */
    public static Gpt2Session create(Gpt2Graph graph) {
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            return create(graph, opts);
        }
    }

    public static Gpt2Session create(Gpt2Graph graph, OrtSession.SessionOptions options) {
        Objects.requireNonNull(graph, "graph");
        Objects.requireNonNull(options, "options");
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try {
            return new Gpt2Session(env, env.createSession(OnnxSerializer.toBytes(graph.model()), options), graph);
        } catch (OrtException e) {
            throw new PetException("ONNX Runtime rejected the GPT-2 graph: " + e.getMessage(), e);
        }
    }

    public Gpt2Graph graph() {
        return graph;
    }

    public Gpt2Config config() {
        return graph.config();
    }

    OrtEnvironment environment() {
        return env;
    }

    /** Runs the full sequences without cache; {@code attentionMask} may be null (all ones). */
    public Gpt2Output run(long[][] inputIds, long[][] attentionMask) {
        return run(inputIds, attentionMask, null, null);
    }

    /**
     * Runs one forward pass.
     *
     * @param inputIds      [batch][sequence] token ids
     * @param attentionMask [batch][past+sequence] of 0/1, or null for all ones
     * @param positionIds   [batch][sequence], or null for past, past+1, ...
     * @param past          the cache of an earlier step (its length is the past length), or null for none
     */
    public Gpt2Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, Gpt2Cache past) {
        Gpt2Config c = graph.config();
        CausalLmGraphOptions o = graph.options();
        int batch = checkRectangular("input_ids", inputIds, -1);
        int seq = inputIds[0].length;
        if (seq == 0) {
            throw new PetException("input_ids: expected at least one token per row, found 0");
        }
        long pastLen = past == null ? 0 : past.length();
        if (past != null && o.kvCache() != CausalLmGraphOptions.KvCache.PAST_AND_PRESENT) {
            throw new PetException("this GPT-2 graph has no past_key_values inputs (kvCache=" + o.kvCache() + ")");
        }
        if (past != null && past.batch() != batch) {
            throw new PetException("past_key_values: batch " + past.batch() + " does not match input_ids batch "
                    + batch);
        }
        if (pastLen + seq > c.nPositions()) {
            throw new PetException("sequence length " + (pastLen + seq) + " (past " + pastLen + " + new " + seq
                    + ") exceeds n_positions " + c.nPositions());
        }
        for (int bi = 0; bi < batch; bi++) {
            for (int s = 0; s < seq; s++) {
                long id = inputIds[bi][s];
                if (id < 0 || id >= c.vocabSize()) {
                    throw new PetException("input_ids[" + bi + "][" + s + "] = " + id
                            + " is outside the vocabulary [0, " + c.vocabSize() + ")");
                }
            }
        }
        if (attentionMask != null) {
            if (!o.attentionMask()) {
                throw new PetException("this GPT-2 graph has no attention_mask input");
            }
            checkRectangular("attention_mask", attentionMask, batch);
            if (attentionMask[0].length != pastLen + seq) {
                throw new PetException("attention_mask: expected length past+sequence = " + (pastLen + seq)
                        + ", found " + attentionMask[0].length);
            }
            for (long[] row : attentionMask) {
                for (long m : row) {
                    if (m != 0 && m != 1) {
                        throw new PetException("attention_mask: expected values 0 or 1, found " + m);
                    }
                }
            }
        }
        if (positionIds != null) {
            if (!o.positionIds()) {
                throw new PetException("this GPT-2 graph has no position_ids input");
            }
            checkRectangular("position_ids", positionIds, batch);
            if (positionIds[0].length != seq) {
                throw new PetException("position_ids: expected length " + seq + ", found "
                        + positionIds[0].length);
            }
            for (long[] row : positionIds) {
                for (long p : row) {
                    if (p < 0 || p >= c.nPositions()) {
                        throw new PetException("position_ids: " + p + " is outside [0, " + c.nPositions() + ")");
                    }
                }
            }
        }

        List<OnnxTensor> owned = new ArrayList<>();
        Gpt2Cache emptyPast = null;
        try {
            Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
            feeds.put(Gpt2Graph.INPUT_IDS, longs(owned, inputIds));
            if (o.attentionMask()) {
                feeds.put(Gpt2Graph.ATTENTION_MASK, longs(owned, attentionMask != null ? attentionMask
                        : filled(batch, (int) (pastLen + seq), 1)));
            }
            if (o.positionIds()) {
                long[][] pos = positionIds;
                if (pos == null) {
                    pos = new long[batch][seq];
                    for (long[] row : pos) {
                        for (int s = 0; s < seq; s++) {
                            row[s] = pastLen + s;
                        }
                    }
                }
                feeds.put(Gpt2Graph.POSITION_IDS, longs(owned, pos));
            }
            if (o.kvCache() == CausalLmGraphOptions.KvCache.PAST_AND_PRESENT) {
                Gpt2Cache p = past;
                if (p == null) {
                    emptyPast = Gpt2Cache.empty(this, batch);
                    p = emptyPast;
                }
                for (int i = 0; i < c.nLayer(); i++) {
                    feeds.put(Gpt2Graph.pastKey(i), p.key(i));
                    feeds.put(Gpt2Graph.pastValue(i), p.value(i));
                }
            }
            OrtSession.Result result = session.run(feeds);
            return new Gpt2Output(result, graph, batch, seq, pastLen + seq);
        } catch (OrtException e) {
            throw new PetException("ONNX Runtime failed to run GPT-2: " + e.getMessage(), e);
        } finally {
            owned.forEach(OnnxTensor::close);
            if (emptyPast != null) {
                emptyPast.close();
            }
        }
    }

    private static int checkRectangular(String name, long[][] rows, int expectedBatch) {
        Objects.requireNonNull(rows, name);
        if (rows.length == 0) {
            throw new PetException(name + ": expected at least one row, found 0");
        }
        if (expectedBatch >= 0 && rows.length != expectedBatch) {
            throw new PetException(name + ": expected batch " + expectedBatch + ", found " + rows.length);
        }
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].length != rows[0].length) {
                throw new PetException(name + ": row " + i + " has length " + rows[i].length + ", expected "
                        + rows[0].length + " like row 0");
            }
        }
        return rows.length;
    }

    private static long[][] filled(int rows, int cols, long v) {
        long[][] a = new long[rows][cols];
        for (long[] r : a) {
            java.util.Arrays.fill(r, v);
        }
        return a;
    }

    private OnnxTensor longs(List<OnnxTensor> owned, long[][] rows) throws OrtException {
        int cols = rows[0].length;
        LongBuffer buf = LongBuffer.allocate(rows.length * cols);
        for (long[] r : rows) {
            buf.put(r);
        }
        buf.flip();
        OnnxTensor t = OnnxTensor.createTensor(env, buf, new long[] {rows.length, cols});
        owned.add(t);
        return t;
    }

    /** A float tensor of the graph's type from float data (zero-sized tensors allowed). */
    OnnxTensor floats(float[] data, long[] shape) throws OrtException {
        if (graph.options().dataType() == DataType.DOUBLE) {
            double[] d = new double[data.length];
            for (int i = 0; i < d.length; i++) {
                d[i] = data[i];
            }
            return OnnxTensor.createTensor(env, DoubleBuffer.wrap(d), shape);
        }
        return OnnxTensor.createTensor(env, FloatBuffer.wrap(data), shape);
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new PetException("cannot close ONNX Runtime session: " + e.getMessage(), e);
        }
    }
}
