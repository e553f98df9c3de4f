package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Half;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Predicate;

/**
 * Symmetric int8 quantization with one scale per output channel, for kernel {@code matmul_integer}:
 * {@code scale = max|w| / 127} over the channel's K values (1 for an all-zero channel) and
 * {@code code = clamp(rint(w / scale), −127, 127)}, the division in float and the rounding half-to-even as ONNX
 * {@code QuantizeLinear} rounds. The weight is streamed twice (the channels' ranges, then the codes), so no float
 * copy of it is made.
 */
public final class ChannelQuantizer {
    private static final int QMAX = 127;

    private ChannelQuantizer() {
    }

    /**
     * A matrix of N output channels by K inputs in int8.
     *
     * @param codes        int8 [N, K], channel-major
     * @param scales       float [N]
     * @param sumSquares   Σ w² of the original values
     * @param errorSquares Σ (w − dequantized w)²
     */
    public record Quantized(long rows, long columns, Tensor codes, Tensor scales, double sumSquares,
            double errorSquares) {
        /** ‖W − Ŵ‖_F / ‖W‖_F (0 for an all-zero matrix). */
        public double relativeError() {
            return sumSquares == 0 ? 0 : Math.sqrt(errorSquares / sumSquares);
        }

        /** The codes as int8 [K, N]: the B operand of {@code A[M, K] · B}. */
        public Tensor transposedCodes() {
            int n = Math.toIntExact(rows);
            int k = Math.toIntExact(columns);
            ByteBuffer src = codes.buffer();
            ByteBuffer out = allocate((long) n * k);
            for (int c = 0; c < n; c++) {
                for (int i = 0; i < k; i++) {
                    out.put(i * n + c, src.get(c * k + i));
                }
            }
            return Tensor.of(DataType.INT8, new long[] {k, n}, out);
        }

        /** Ŵ as float [N, K]. */
        public float[] dequantize() {
            int n = Math.toIntExact(rows);
            int k = Math.toIntExact(columns);
            ByteBuffer src = codes.buffer();
            ByteBuffer sc = scales.buffer();
            float[] out = new float[Math.multiplyExact(n, k)];
            for (int c = 0; c < n; c++) {
                float s = sc.getFloat(c * 4);
                for (int i = 0; i < k; i++) {
                    out[c * k + i] = src.get(c * k + i) * s;
                }
            }
            return out;
        }
    }

    /**
     * Quantizes a 2-D float weight. {@code kAlongColumns} true: each row of {@code w} [R, C] is one output channel
     * (nn.Linear's [out, in]); false: each column is (Conv1D's [in, out]).
     */
    public static Quantized quantize(Tensor w, boolean kAlongColumns) {
        if (w.rank() != 2 || !w.dataType().isFloatingPoint()) {
            throw new OnnxException("cannot quantize " + w + ": expected a 2-D FLOAT, FLOAT16, BFLOAT16 or DOUBLE"
                    + " weight");
        }
        long rows = w.dim(0);
        long cols = w.dim(1);
        int n = Math.toIntExact(kAlongColumns ? rows : cols);
        long k = kAlongColumns ? cols : rows;
        ByteBuffer codes = allocate(Math.multiplyExact((long) n, k));
        float[] amax = new float[n];
        DataType type = w.dataType();
        stream(w, (e, v) -> {
            int c = (int) (kAlongColumns ? e / cols : e % cols);
            amax[c] = Math.max(amax[c], Math.abs(v));
        });
        ByteBuffer scales = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int c = 0; c < n; c++) {
            scales.putFloat(c * 4, amax[c] == 0 ? 1f : amax[c] / QMAX);
        }
        double[] sums = new double[2];
        stream(w, (e, v) -> {
            long r = e / cols;
            long col = e % cols;
            int c = (int) (kAlongColumns ? r : col);
            long i = kAlongColumns ? col : r;
            float s = scales.getFloat(c * 4);
            int q = Math.max(-QMAX, Math.min(QMAX, (int) Math.rint(v / s)));
            codes.put(Math.toIntExact(c * k + i), (byte) q);
            double err = (double) v - q * s;
            sums[0] += (double) v * v;
            sums[1] += err * err;
        });
        return new Quantized(n, k, Tensor.of(DataType.INT8, new long[] {n, k}, codes),
                Tensor.of(DataType.FLOAT, new long[] {n}, scales), sums[0], sums[1]);
    }

    private interface ElementSink {
        void accept(long index, float value);
    }

    /** Every element of {@code w} in row-major order, read from its file in chunks when it has one. */
    private static void stream(Tensor w, ElementSink sink) {
        DataType type = w.dataType();
        int size = type.byteSize();
        long[] next = {0};
        Predicate<ByteBuffer> chunk = b -> {
            int count = b.remaining() / size;
            int base = b.position();
            for (int i = 0; i < count; i++) {
                int at = base + i * size;
                float v = switch (type) {
                    case FLOAT -> b.getFloat(at);
                    case FLOAT16 -> Half.fp16ToFloat(b.getShort(at));
                    case BFLOAT16 -> Half.bf16ToFloat(b.getShort(at));
                    case DOUBLE -> (float) b.getDouble(at);
                    default -> throw new IllegalStateException(type.toString());
                };
                sink.accept(next[0]++, v);
            }
            return true;
        };
        if (w.data() instanceof FileData fd) {
            fd.readChunks(size, chunk);
        } else {
            chunk.test(w.buffer());
        }
    }

    private static ByteBuffer allocate(long bytes) {
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new OnnxException("an int8 weight of " + bytes + " bytes is above the 2 GiB one buffer holds");
        }
        return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
}
