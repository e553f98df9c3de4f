package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Half;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Predicate;
import java.util.stream.IntStream;

/**
 * Symmetric int8 quantization with one scale per output channel, for kernel {@code matmul_integer}:
 * {@code scale = max|w| / 127} over the channel's K values (1 for an all-zero channel) and
 * {@code code = clamp(rint(w / scale), −127, 127)}, the division in float and the rounding half-to-even as ONNX
 * {@code QuantizeLinear} rounds. The weight is streamed twice (the channels' ranges, then the codes) in chunks that
 * the pool's threads share, so no float copy of all of it is made.
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
            // tiles of 64 inputs, in parallel: each reads 64 adjacent codes of a channel and writes its own bytes
            IntStream.range(0, (k + 63) / 64).parallel().forEach(tile -> {
                int from = tile * 64;
                int to = Math.min(k, from + 64);
                for (int c = 0; c < n; c++) {
                    for (int i = from; i < to; i++) {
                        out.put(i * n + c, src.get(c * k + i));
                    }
                }
            });
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
        // Pass 1: each channel's max |w|; every part of a chunk keeps its own maxima, merged after it.
        float[] amax = new float[n];
        stream(w, (first, values) -> {
            float[][] parts = IntStream.range(0, PARTS).parallel().mapToObj(p -> {
                float[] local = new float[n];
                int[] range = part(values.length, p);
                // the element's row and column are stepped, not divided for (a long division per element cost
                // more than the rest of the loop)
                long row = (first + range[0]) / cols;
                long col = (first + range[0]) % cols;
                for (int i = range[0]; i < range[1]; i++) {
                    int c = (int) (kAlongColumns ? row : col);
                    local[c] = Math.max(local[c], Math.abs(values[i]));
                    if (++col == cols) {
                        col = 0;
                        row++;
                    }
                }
                return local;
            }).toArray(float[][]::new);
            for (float[] local : parts) {
                for (int c = 0; c < n; c++) {
                    amax[c] = Math.max(amax[c], local[c]);
                }
            }
        });
        float[] scale = new float[n];
        ByteBuffer scales = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int c = 0; c < n; c++) {
            scale[c] = amax[c] == 0 ? 1f : amax[c] / QMAX;
            scales.putFloat(c * 4, scale[c]);
        }
        // Pass 2: the codes, each element writing its own byte, and the error sums per part.
        double[] sums = new double[2];
        stream(w, (first, values) -> {
            double[][] parts = IntStream.range(0, PARTS).parallel().mapToObj(p -> {
                double sum = 0;
                double err = 0;
                int[] range = part(values.length, p);
                long row = (first + range[0]) / cols;
                long col = (first + range[0]) % cols;
                for (int i = range[0]; i < range[1]; i++) {
                    int c = (int) (kAlongColumns ? row : col);
                    long at = kAlongColumns ? col : row;
                    float v = values[i];
                    int q = Math.max(-QMAX, Math.min(QMAX, (int) Math.rint(v / scale[c])));
                    codes.put((int) (c * k + at), (byte) q);
                    double d = (double) v - q * scale[c];
                    sum += (double) v * v;
                    err += d * d;
                    if (++col == cols) {
                        col = 0;
                        row++;
                    }
                }
                return new double[] {sum, err};
            }).toArray(double[][]::new);
            for (double[] part : parts) {
                sums[0] += part[0];
                sums[1] += part[1];
            }
        });
        return new Quantized(n, k, Tensor.of(DataType.INT8, new long[] {n, k}, codes),
                Tensor.of(DataType.FLOAT, new long[] {n}, scales), sums[0], sums[1]);
    }

    /** Parts a chunk is split into for the pool's threads. */
    private static final int PARTS = Math.max(1, Runtime.getRuntime().availableProcessors());

    /** The index range [from, to) of part {@code p} of {@code length} values. */
    private static int[] part(int length, int p) {
        return new int[] {(int) ((long) length * p / PARTS), (int) ((long) length * (p + 1) / PARTS)};
    }

    private interface ChunkSink {
        /** {@code values} are the elements from row-major index {@code first} on. */
        void accept(long first, float[] values);
    }

    /** Every element of {@code w} in row-major order, as floats, in chunks read from its file when it has one. */
    private static void stream(Tensor w, ChunkSink sink) {
        DataType type = w.dataType();
        int size = type.byteSize();
        long[] next = {0};
        Predicate<ByteBuffer> chunk = b -> {
            int count = b.remaining() / size;
            int base = b.position();
            float[] values = new float[count];
            for (int i = 0; i < count; i++) {
                int at = base + i * size;
                values[i] = switch (type) {
                    case FLOAT -> b.getFloat(at);
                    case FLOAT16 -> Half.fp16ToFloat(b.getShort(at));
                    case BFLOAT16 -> Half.bf16ToFloat(b.getShort(at));
                    case DOUBLE -> (float) b.getDouble(at);
                    default -> throw new IllegalStateException(type.toString());
                };
            }
            sink.accept(next[0], values);
            next[0] += count;
            return true;
        };
        if (w.data() instanceof FileData fd) {
            fd.readChunks(size, chunk);
        } else {
            ByteBuffer all = w.buffer();
            // a heap tensor in slabs, so no float copy of all of it is made either
            int slab = size * (1 << 22);
            for (int from = 0; from < all.limit(); from += slab) {
                chunk.test(all.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(from)
                        .limit(Math.min(all.limit(), from + slab)));
            }
        }
    }

    private static ByteBuffer allocate(long bytes) {
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new OnnxException("an int8 weight of " + bytes + " bytes is above the 2 GiB one buffer holds");
        }
        return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
}
