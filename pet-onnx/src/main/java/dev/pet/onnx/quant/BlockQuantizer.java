package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Half;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * Block-wise quantization of 2-D float weights into {@link QuantizedMatrix} (MatMulNBits layout). Rounding is
 * half-to-even ({@link Math#rint}) of {@code w / scale} computed in float, as ONNX {@code QuantizeLinear} rounds;
 * scales are float. Symmetric: {@code scale = max|w| / (2^(b-1) − 1)}, code {@code = clamp(rint(w/scale),
 * −2^(b-1), 2^(b-1) − 1) + 2^(b-1)} (the stored zero point is implicit). Asymmetric: over {@code [lo, hi] =
 * [min(w, 0), max(w, 0)]}, {@code scale = (hi − lo) / (2^b − 1)}, {@code zp = clamp(rint(−lo/scale), 0, 2^b − 1)},
 * code {@code = clamp(rint(w/scale) + zp, 0, 2^b − 1)}. An all-zero block gets scale 1.
 */
public final class BlockQuantizer {
    private BlockQuantizer() {
    }

    /** Values per slab when a weight is streamed: 16 MB of floats, however large the weight. */
    static final int SLAB_VALUES = 1 << 22;

    /**
     * Quantizes a 2-D weight. {@code kAlongColumns} true: each row of {@code w} [R, C] is one output row (N = R,
     * K = C, as nn.Linear stores [out, in]); false: each column is (N = C, K = R, as GPT-2's Conv1D stores
     * [in, out], or the transposed copy a backward pass multiplies with). The weight is read once, in slabs of whole
     * rows (of whole blocks along K when K runs down the rows), so no float copy of all of it is ever made: a
     * 128256 × 4096 output head would otherwise need a 2.1 GB array.
     */
    public static QuantizedMatrix quantize(Tensor w, boolean kAlongColumns, QuantSpec spec) {
        return quantize(w, kAlongColumns, spec, SLAB_VALUES);
    }

    static QuantizedMatrix quantize(Tensor w, boolean kAlongColumns, QuantSpec spec, int slabValues) {
        requireFloatMatrix(w);
        long rows = w.dim(0);
        long cols = w.dim(1);
        Quantizing out = new Quantizing(rows, cols, kAlongColumns, spec);
        long unit = kAlongColumns ? cols : Math.multiplyExact(cols, (long) spec.blockSize());
        long slabRows = (kAlongColumns ? 1 : spec.blockSize()) * Math.max(1, slabValues / unit);
        long slabLength = Math.min(Math.multiplyExact(slabRows, cols), w.elementCount());
        if (slabLength > Integer.MAX_VALUE - 8) {
            throw new OnnxException("cannot quantize " + w + ": a slab of " + slabLength + " values is more than one"
                    + " array holds");
        }
        float[] slab = new float[(int) slabLength];
        DataType type = w.dataType();
        long[] filled = {0, 0}; // values in the slab, first row of the slab
        java.util.function.Predicate<ByteBuffer> chunk = b -> {
            int n = b.remaining() / type.byteSize();
            for (int i = 0; i < n; i++) {
                slab[(int) filled[0]++] = read(b, type, i);
                if (filled[0] == slab.length) {
                    out.take(slab, filled[1], filled[0] / cols);
                    filled[1] += filled[0] / cols;
                    filled[0] = 0;
                }
            }
            return true;
        };
        if (w.data() instanceof FileData fd) {
            fd.readChunks(type.byteSize(), chunk);
        } else {
            chunk.test(w.buffer());
        }
        if (filled[0] > 0) {
            out.take(slab, filled[1], filled[0] / cols);
        }
        return out.result();
    }

    private static void requireFloatMatrix(Tensor w) {
        if (w.rank() != 2) {
            throw new OnnxException("cannot quantize " + w + ": expected a 2-D weight");
        }
        if (!w.dataType().isFloatingPoint()) {
            throw new OnnxException("cannot quantize " + w + ": expected FLOAT, FLOAT16, BFLOAT16 or DOUBLE");
        }
    }

    /** One weight being quantized: the output buffers, filled slab by slab of the weight's rows. */
    private static final class Quantizing {
        private final boolean kAlongColumns;
        private final QuantSpec spec;
        private final long n;
        private final long k;
        private final long kBlocks;
        private final long zpRow;
        private final ByteBuffer codes;
        private final ByteBuffer scales;
        private final ByteBuffer zeros;
        /** Per output row: sum of squares of the weights and of the quantization errors. */
        private final double[] sums;
        private final double[] errors;

        Quantizing(long rows, long cols, boolean kAlongColumns, QuantSpec spec) {
            this.kAlongColumns = kAlongColumns;
            this.spec = spec;
            n = kAlongColumns ? rows : cols;
            k = kAlongColumns ? cols : rows;
            kBlocks = QuantizedMatrix.blocksPerRow(k, spec.blockSize());
            zpRow = QuantizedMatrix.zeroPointBytesPerRow(kBlocks, spec.bits());
            codes = allocate(Math.multiplyExact(Math.multiplyExact(n, kBlocks), (long) spec.blobBytes()));
            scales = allocate(Math.multiplyExact(Math.multiplyExact(n, kBlocks), 4L));
            zeros = spec.symmetric() ? null : allocate(Math.multiplyExact(n, zpRow));
            sums = new double[Math.toIntExact(n)];
            errors = new double[Math.toIntExact(n)];
        }

        /**
         * Quantizes the blocks held by {@code slab}: rows {@code [first, first + count)} of the weight, row-major.
         * With K along the rows, {@code first} starts a block, and the slab ends one or the weight does.
         */
        void take(float[] slab, long first, long count) {
            int bs = spec.blockSize();
            int blob = spec.blobBytes();
            int kInt = Math.toIntExact(k);
            int nInt = Math.toIntExact(n);
            long rowFrom = kAlongColumns ? first : 0;
            long rowTo = kAlongColumns ? first + count : n;
            long blockFrom = kAlongColumns ? 0 : first / bs;
            long blockTo = kAlongColumns ? kBlocks : QuantizedMatrix.blocksPerRow(first + count, bs);
            // Each output row is independent; rows run in parallel, each writing only its own bytes.
            IntStream.range(Math.toIntExact(rowFrom), Math.toIntExact(rowTo)).parallel().forEach(r -> {
                float[] block = new float[bs];
                int[] q = new int[bs];
                double sum = 0;
                double err = 0;
                for (long j = blockFrom; j < blockTo; j++) {
                    int start = Math.toIntExact(j * bs);
                    int len = Math.min(bs, kInt - start);
                    for (int i = 0; i < len; i++) {
                        long index = kAlongColumns ? (r - first) * kInt + start + i
                                : (start + i - first) * nInt + r;
                        block[i] = slab[(int) index];
                    }
                    Arrays.fill(block, len, bs, 0f);
                    Block b = quantizeBlock(block, q, spec);
                    long slot = r * kBlocks + j;
                    scales.putFloat(Math.toIntExact(slot * 4), b.scale);
                    int base = Math.toIntExact(slot * blob);
                    for (int i = 0; i < bs; i++) {
                        putCode(codes, base, i, q[i], spec.bits());
                    }
                    if (zeros != null) {
                        putCode(zeros, Math.toIntExact(r * zpRow), (int) j, b.zeroPoint, spec.bits());
                    }
                    for (int i = 0; i < len; i++) {
                        float deq = (q[i] - b.zeroPoint) * b.scale;
                        sum += (double) block[i] * block[i];
                        err += ((double) block[i] - deq) * ((double) block[i] - deq);
                    }
                }
                sums[r] += sum;
                errors[r] += err;
            });
        }

        QuantizedMatrix result() {
            double sum = 0;
            double err = 0;
            for (int r = 0; r < sums.length; r++) {
                sum += sums[r];
                err += errors[r];
            }
            Tensor codeTensor = Tensor.of(DataType.UINT8, new long[] {n, kBlocks, spec.blobBytes()}, codes);
            Tensor scaleTensor = Tensor.of(DataType.FLOAT, new long[] {n * kBlocks}, scales);
            Tensor zpTensor = zeros == null ? null : Tensor.of(DataType.UINT8, new long[] {n * zpRow}, zeros);
            return new QuantizedMatrix(n, k, spec, codeTensor, scaleTensor, zpTensor, sum, err);
        }
    }

    private record Block(float scale, int zeroPoint) {
    }

    /** Codes of one block (padded with zeros to the block size) into {@code q}; returns scale and zero point. */
    private static Block quantizeBlock(float[] v, int[] q, QuantSpec spec) {
        if (spec.symmetric()) {
            float amax = 0;
            for (float x : v) {
                amax = Math.max(amax, Math.abs(x));
            }
            int qmax = spec.defaultZeroPoint() - 1;
            float scale = amax == 0 ? 1f : amax / qmax;
            int zp = spec.defaultZeroPoint();
            for (int i = 0; i < v.length; i++) {
                q[i] = clamp((int) Math.rint(v[i] / scale), -zp, qmax) + zp;
            }
            return new Block(scale, zp);
        }
        float lo = 0;
        float hi = 0;
        for (float x : v) {
            lo = Math.min(lo, x);
            hi = Math.max(hi, x);
        }
        int qmax = spec.maxCode();
        float scale = hi == lo ? 1f : (hi - lo) / qmax;
        int zp = clamp((int) Math.rint(-lo / scale), 0, qmax);
        for (int i = 0; i < v.length; i++) {
            q[i] = clamp((int) Math.rint(v[i] / scale) + zp, 0, qmax);
        }
        return new Block(scale, zp);
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    /** Writes code {@code i} of a packed run starting at byte {@code base}: 4-bit codes low nibble first. */
    private static void putCode(ByteBuffer out, int base, int i, int code, int bits) {
        if (bits == 8) {
            out.put(base + i, (byte) code);
            return;
        }
        int at = base + i / 2;
        int old = Byte.toUnsignedInt(out.get(at));
        int packed = (i & 1) == 0 ? (old & 0xF0) | code : (old & 0x0F) | (code << 4);
        out.put(at, (byte) packed);
    }

    /** Element {@code index} of a chunk of {@code type} values, counted from the chunk's position. */
    private static float read(ByteBuffer b, DataType type, int index) {
        int at = b.position() + index * type.byteSize();
        return switch (type) {
            case FLOAT -> b.getFloat(at);
            case FLOAT16 -> Half.fp16ToFloat(b.getShort(at));
            case BFLOAT16 -> Half.bf16ToFloat(b.getShort(at));
            case DOUBLE -> (float) b.getDouble(at);
            default -> throw new IllegalStateException(type.toString());
        };
    }

    /** A heap buffer: quantized weights go on to a scratch file, so ONNX Runtime never wraps this one. */
    private static ByteBuffer allocate(long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new OnnxException("a quantized weight of " + bytes + " bytes is above the 2 GiB one buffer holds");
        }
        return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
}
