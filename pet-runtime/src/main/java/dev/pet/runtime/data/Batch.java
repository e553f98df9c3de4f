package dev.pet.runtime.data;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Objects;

/**
 * One batch of packed windows. {@code tokens} is row-major {@code [batchSize, seqLength + 1]}: inputs are columns
 * {@code 0..S-1}, targets columns {@code 1..S}. {@code lossMask} is {@code [batchSize, seqLength]}: entry
 * {@code [b, t]} is 1 when the target {@code tokens[b, t + 1]} counts in the loss (0 for prompt tokens of
 * prompt/completion data). {@code position} is where this batch was taken from.
 */
public record Batch(int batchSize, int seqLength, long[] tokens, float[] lossMask, DataPosition position) {
    public Batch {
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(lossMask, "lossMask");
        Objects.requireNonNull(position, "position");
        if (batchSize < 1 || seqLength < 1) {
            throw new IllegalArgumentException("batch " + batchSize + " x " + seqLength + " must be positive");
        }
        if (tokens.length != (long) batchSize * (seqLength + 1)) {
            throw new IllegalArgumentException("tokens has " + tokens.length + " entries, expected "
                    + batchSize + " x " + (seqLength + 1));
        }
        if (lossMask.length != (long) batchSize * seqLength) {
            throw new IllegalArgumentException("lossMask has " + lossMask.length + " entries, expected "
                    + batchSize + " x " + seqLength);
        }
    }

    /** Token {@code t} (0..S) of row {@code b}. */
    public long token(int b, int t) {
        return tokens[b * (seqLength + 1) + t];
    }

    /** Number of target tokens that count in the loss. */
    public long lossTokens() {
        long n = 0;
        for (float m : lossMask) {
            if (m != 0) {
                n++;
            }
        }
        return n;
    }

    /** The tokens as a native-order direct buffer, ready to wrap as an ONNX Runtime int64 tensor without a copy. */
    public LongBuffer tokensDirect() {
        LongBuffer buffer = ByteBuffer.allocateDirect(tokens.length * Long.BYTES).order(ByteOrder.nativeOrder()).asLongBuffer();
        buffer.put(tokens).flip();
        return buffer;
    }

    /** The loss mask as a native-order direct buffer. */
    public FloatBuffer lossMaskDirect() {
        FloatBuffer buffer = ByteBuffer.allocateDirect(lossMask.length * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
        buffer.put(lossMask).flip();
        return buffer;
    }
}
