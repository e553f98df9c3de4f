package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The gradient all-reduce of a data-parallel step. Each replica sends its micro-batch share's summed loss, counted
 * tokens and the gradients of the mean loss over its share; every replica averages them weighted by tokens, which is
 * the gradient of the mean loss over the whole micro-batch (what one process computes), also when shares hold
 * different numbers of counted tokens. All replicas reduce the same messages in rank order in float64, so they get
 * identical averages and stay identical.
 */
final class GradientExchange {
    /**
     * Bytes of the header: loss sum, token count and the nanoseconds the sender spent computing its share (what
     * rank 0 reports per replica), all float64.
     */
    static final int HEADER_BYTES = 24;

    private final List<String> trainables;
    private final Map<String, Tensor> like;
    private final int payloadBytes;

    /** @param like a tensor of each trainable's type and shape, in the order messages carry them */
    GradientExchange(Map<String, Tensor> like) {
        this.like = new LinkedHashMap<>(like);
        this.trainables = List.copyOf(like.keySet());
        long bytes = HEADER_BYTES;
        for (Tensor t : like.values()) {
            if (t.dataType() != DataType.FLOAT && t.dataType() != DataType.DOUBLE) {
                throw new PetException("trainable " + t + " is neither float32 nor float64");
            }
            bytes += t.byteSize();
        }
        this.payloadBytes = Math.toIntExact(bytes);
    }

    /** Bytes each replica sends per micro-batch. */
    int payloadBytes() {
        return payloadBytes;
    }

    /** The loss over the whole micro-batch, the averaged gradients, and each replica's compute time, by rank. */
    record Average(double loss, Map<String, Tensor> gradients, long[] computeNanos) {
    }

    byte[] encode(double lossSum, double tokens, long computeNanos, Map<String, Tensor> gradients) {
        ByteBuffer buf = ByteBuffer.allocate(payloadBytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putDouble(lossSum).putDouble(tokens).putDouble(computeNanos);
        for (String name : trainables) {
            Tensor g = gradients.get(name);
            Tensor expected = like.get(name);
            if (g == null || g.dataType() != expected.dataType() || g.elementCount() != expected.elementCount()) {
                throw new PetException("gradient of '" + name + "' is " + g + ", expected the shape of " + expected);
            }
            buf.put(g.buffer().duplicate().order(ByteOrder.LITTLE_ENDIAN));
        }
        return buf.array();
    }

    Average reduce(List<byte[]> messages) {
        double lossSum = 0;
        double tokens = 0;
        long[] computeNanos = new long[messages.size()];
        for (int r = 0; r < messages.size(); r++) {
            if (messages.get(r).length != payloadBytes) {
                throw new PetException("replica " + r + " sent " + messages.get(r).length + " gradient bytes, "
                        + "expected " + payloadBytes + ": the replicas do not train the same model and PET config");
            }
            ByteBuffer b = ByteBuffer.wrap(messages.get(r)).order(ByteOrder.LITTLE_ENDIAN);
            lossSum += b.getDouble(0);
            tokens += b.getDouble(8);
            computeNanos[r] = (long) b.getDouble(16);
        }
        double denominator = Math.max(tokens, 1);
        double[] weights = new double[messages.size()];
        for (int r = 0; r < weights.length; r++) {
            weights[r] = ByteBuffer.wrap(messages.get(r)).order(ByteOrder.LITTLE_ENDIAN).getDouble(8) / denominator;
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        int offset = HEADER_BYTES;
        for (String name : trainables) {
            Tensor t = like.get(name);
            int n = Math.toIntExact(t.elementCount());
            boolean f32 = t.dataType() == DataType.FLOAT;
            double[] sum = new double[n];
            for (int r = 0; r < weights.length; r++) {
                ByteBuffer b = ByteBuffer.wrap(messages.get(r)).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    sum[i] += weights[r] * (f32 ? b.getFloat(offset + 4 * i) : b.getDouble(offset + 8 * i));
                }
            }
            out.put(name, Tensor.fromDoubles(t.dataType(), sum, t.shape()));
            offset += Math.toIntExact(t.byteSize());
        }
        return new Average(lossSum / denominator, out, computeNanos);
    }
}
