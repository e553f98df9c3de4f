package dev.pet.onnx.autodiff;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import java.nio.ByteBuffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** Test helper: runs models with ONNX Runtime (one session per model, single-threaded, all values as doubles). */
public final class Ort implements AutoCloseable {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    /** A tensor to feed: doubles, floats or longs with a shape. */
    public record Feed(Object data, long[] shape) {
        public static Feed doubles(double[] d, long... shape) {
            return new Feed(d, shape);
        }

        public static Feed floats(float[] d, long... shape) {
            return new Feed(d, shape);
        }

        public static Feed longs(long[] d, long... shape) {
            return new Feed(d, shape);
        }

        public static Feed bools(boolean[] d, long... shape) {
            return new Feed(d, shape);
        }
    }

    public Ort(Model model) {
        this(model, true);
    }

    /**
     * With {@code memoryPattern} false, as pet-engine's sessions run (memory patterns off, arena on): for memory
     * benchmarks whose figures should be what a train step sees.
     */
    public Ort(Model model, boolean memoryPattern) {
        try {
            OrtSession.SessionOptions o = new OrtSession.SessionOptions();
            o.setIntraOpNumThreads(1);
            o.setInterOpNumThreads(1);
            o.setMemoryPatternOptimization(memoryPattern);
            session = ENV.createSession(OnnxSerializer.toBytes(model), o);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime rejected the model: " + e.getMessage(), e);
        }
    }

    /** Runs and returns every requested output as doubles (bools as 0/1). */
    public Map<String, double[]> run(Map<String, Feed> feeds, String... outputs) {
        Map<String, OnnxTensor> in = new HashMap<>();
        try {
            for (Map.Entry<String, Feed> e : feeds.entrySet()) {
                in.put(e.getKey(), tensor(e.getValue()));
            }
            Map<String, double[]> out = new LinkedHashMap<>();
            try (OrtSession.Result r = outputs.length == 0 ? session.run(in)
                    : session.run(in, java.util.Set.of(outputs))) {
                for (Map.Entry<String, OnnxValue> e : r) {
                    out.put(e.getKey(), toDoubles((OnnxTensor) e.getValue()));
                }
            }
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime run failed: " + e.getMessage(), e);
        } finally {
            in.values().forEach(OnnxTensor::close);
        }
    }

    private static OnnxTensor tensor(Feed f) throws OrtException {
        if (f.data() instanceof double[] d) {
            return OnnxTensor.createTensor(ENV, DoubleBuffer.wrap(d), f.shape());
        }
        if (f.data() instanceof float[] d) {
            return OnnxTensor.createTensor(ENV, FloatBuffer.wrap(d), f.shape());
        }
        if (f.data() instanceof long[] d) {
            return OnnxTensor.createTensor(ENV, LongBuffer.wrap(d), f.shape());
        }
        boolean[] b = (boolean[]) f.data();
        ByteBuffer bytes = ByteBuffer.allocateDirect(b.length);
        for (boolean v : b) {
            bytes.put((byte) (v ? 1 : 0));
        }
        bytes.flip();
        return OnnxTensor.createTensor(ENV, bytes, f.shape(), ai.onnxruntime.OnnxJavaType.BOOL);
    }

    private static double[] toDoubles(OnnxTensor t) {
        switch (t.getInfo().type) {
            case DOUBLE -> {
                DoubleBuffer b = t.getDoubleBuffer();
                double[] d = new double[b.remaining()];
                b.get(d);
                return d;
            }
            case FLOAT -> {
                FloatBuffer b = t.getFloatBuffer();
                double[] d = new double[b.remaining()];
                for (int i = 0; i < d.length; i++) {
                    d[i] = b.get(i);
                }
                return d;
            }
            case INT64 -> {
                LongBuffer b = t.getLongBuffer();
                double[] d = new double[b.remaining()];
                for (int i = 0; i < d.length; i++) {
                    d[i] = b.get(i);
                }
                return d;
            }
            case BOOL -> {
                ByteBuffer b = t.getByteBuffer();
                double[] d = new double[b.remaining()];
                for (int i = 0; i < d.length; i++) {
                    d[i] = b.get(i);
                }
                return d;
            }
            default -> throw new IllegalStateException("unexpected output type " + t.getInfo().type);
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
