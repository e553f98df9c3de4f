package dev.pet.gpt2;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtSession;
import dev.pet.api.PetException;
import dev.pet.hf.CausalLmGraphOptions;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;

/** The result of one forward pass: logits [batch, sequence, vocab] and, when the graph has them, the new cache. */
public final class Gpt2Output implements AutoCloseable {
    private final OrtSession.Result result;
    private final Gpt2Graph graph;
    private final int batch;
    private final int sequence;
    private final long totalLength;
    private float[] logits;

    Gpt2Output(OrtSession.Result result, Gpt2Graph graph, int batch, int sequence, long totalLength) {
        this.result = result;
        this.graph = graph;
        this.batch = batch;
        this.sequence = sequence;
        this.totalLength = totalLength;
    }

    public int batch() {
        return batch;
    }

    public int sequenceLength() {
        return sequence;
    }

    public int vocabSize() {
        return graph.config().vocabSize();
    }

    /** All logits, row-major [batch, sequence, vocab], as float32 (a double graph's values are rounded). */
    public float[] logits() {
        if (logits == null) {
            OnnxTensor t = tensor(Gpt2Graph.LOGITS);
            if (t.getInfo().type == ai.onnxruntime.OnnxJavaType.DOUBLE) {
                DoubleBuffer d = t.getDoubleBuffer();
                float[] f = new float[d.remaining()];
                for (int i = 0; i < f.length; i++) {
                    f[i] = (float) d.get(i);
                }
                logits = f;
            } else {
                FloatBuffer fb = t.getFloatBuffer();
                float[] f = new float[fb.remaining()];
                fb.get(f);
                logits = f;
            }
        }
        return logits;
    }

    /** The logits of one position of one row. */
    public float[] logits(int row, int position) {
        if (row < 0 || row >= batch || position < 0 || position >= sequence) {
            throw new PetException("logits: row " + row + ", position " + position + " outside [" + batch + ", "
                    + sequence + "]");
        }
        int v = vocabSize();
        float[] out = new float[v];
        System.arraycopy(logits(), (row * sequence + position) * v, out, 0, v);
        return out;
    }

    /** The {@code present} keys and values, valid until this output is closed. */
    public Gpt2Cache cache() {
        if (graph.options().kvCache() == CausalLmGraphOptions.KvCache.NONE) {
            throw new PetException("this GPT-2 graph has no present.* outputs (kvCache=NONE)");
        }
        List<OnnxTensor> k = new ArrayList<>();
        List<OnnxTensor> v = new ArrayList<>();
        for (int i = 0; i < graph.config().nLayer(); i++) {
            k.add(tensor(Gpt2Graph.presentKey(i)));
            v.add(tensor(Gpt2Graph.presentValue(i)));
        }
        return new Gpt2Cache(k, v, totalLength, batch, false);
    }

    private OnnxTensor tensor(String name) {
        OnnxValue v = result.get(name).orElseThrow(() -> new PetException("GPT-2 output '" + name
                + "' is missing"));
        return (OnnxTensor) v;
    }

    @Override
    public void close() {
        result.close();
    }
}
