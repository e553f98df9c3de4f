package dev.pet.gpt2;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import dev.pet.api.PetException;
import java.util.ArrayList;
import java.util.List;

/**
 * The per-layer keys and values of earlier positions ({@code present.{i}.key/value} of one step, fed back as
 * {@code past_key_values.{i}.key/value}). A cache taken from a {@link Gpt2Output} is valid until that output is
 * closed; an empty cache owns its (zero-length) tensors.
 */
public final class Gpt2Cache implements AutoCloseable {
    private final List<OnnxTensor> keys;
    private final List<OnnxTensor> values;
    private final long length;
    private final int batch;
    private final boolean owned;

    Gpt2Cache(List<OnnxTensor> keys, List<OnnxTensor> values, long length, int batch, boolean owned) {
        this.keys = List.copyOf(keys);
        this.values = List.copyOf(values);
        this.length = length;
        this.batch = batch;
        this.owned = owned;
    }

    /** A cache of length 0, for a first step through a graph that requires past inputs. */
    static Gpt2Cache empty(Gpt2Session session, int batch) {
        Gpt2Config c = session.config();
        long[] shape = {batch, c.nHead(), 0, c.headDim()};
        List<OnnxTensor> k = new ArrayList<>();
        List<OnnxTensor> v = new ArrayList<>();
        try {
            for (int i = 0; i < c.nLayer(); i++) {
                k.add(session.floats(new float[0], shape));
                v.add(session.floats(new float[0], shape));
            }
        } catch (OrtException e) {
            k.forEach(OnnxTensor::close);
            v.forEach(OnnxTensor::close);
            throw new PetException("cannot create an empty key/value cache: " + e.getMessage(), e);
        }
        return new Gpt2Cache(k, v, 0, batch, true);
    }

    /** Positions held (the past length of the next step). */
    public long length() {
        return length;
    }

    public int batch() {
        return batch;
    }

    public int layers() {
        return keys.size();
    }

    OnnxTensor key(int layer) {
        return keys.get(layer);
    }

    OnnxTensor value(int layer) {
        return values.get(layer);
    }

    @Override
    public void close() {
        if (owned) {
            keys.forEach(OnnxTensor::close);
            values.forEach(OnnxTensor::close);
        }
    }
}
