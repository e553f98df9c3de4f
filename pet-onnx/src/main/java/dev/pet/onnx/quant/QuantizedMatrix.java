package dev.pet.onnx.quant;

import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * A float matrix of N rows by K columns quantized block-wise along K, in the layout of ONNX Runtime's
 * {@code MatMulNBits} (which computes {@code A · dequantize(B)ᵀ}): codes as uint8 [N, kBlocks, blockSize·bits/8]
 * (4-bit codes two per byte, the even element in the low nibble), scales float [N·kBlocks], and for asymmetric
 * blocks zero points packed per row like the codes (uint8 [N·⌈kBlocks·bits/8⌉]). A last block that K does not fill
 * is padded with the code of 0.
 *
 * @param rows           N
 * @param columns        K
 * @param spec           the quantization
 * @param codes          uint8 [N, kBlocks, blobBytes]
 * @param scales         float [N·kBlocks]
 * @param zeroPoints     uint8 packed zero points, or null when symmetric
 * @param sumSquares     Σ w² of the original values
 * @param errorSquares   Σ (w − dequantized w)²
 */
public record QuantizedMatrix(long rows, long columns, QuantSpec spec, Tensor codes, Tensor scales, Tensor zeroPoints,
        double sumSquares, double errorSquares) {
    public QuantizedMatrix {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(scales, "scales");
        if (codes.dataType() != DataType.UINT8 || scales.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("codes must be UINT8 and scales FLOAT");
        }
    }

    /** Blocks per row: ⌈K / blockSize⌉. */
    public long blocksPerRow() {
        return blocksPerRow(columns, spec.blockSize());
    }

    static long blocksPerRow(long k, int blockSize) {
        return (k + blockSize - 1) / blockSize;
    }

    /** Bytes of packed zero points per row: ⌈kBlocks·bits/8⌉. */
    static long zeroPointBytesPerRow(long kBlocks, int bits) {
        return (kBlocks * bits + 7) / 8;
    }

    /** True when K is not a multiple of the block size, so the last block of each row is padded. */
    public boolean padded() {
        return columns % spec.blockSize() != 0;
    }

    /** ‖W − dequantize(quantize(W))‖_F / ‖W‖_F (0 for an all-zero matrix). */
    public double relativeError() {
        return sumSquares == 0 ? 0 : Math.sqrt(errorSquares / sumSquares);
    }

    /** Bytes held: codes, scales and zero points. */
    public long bytes() {
        return codes.byteSize() + scales.byteSize() + (zeroPoints == null ? 0 : zeroPoints.byteSize());
    }

    /** The code of row {@code n}, column {@code k} (0 ≤ code < 2^bits). */
    public int code(long n, long k) {
        ByteBuffer b = codes.buffer();
        long kBlocks = blocksPerRow();
        int blob = spec.blobBytes();
        long block = k / spec.blockSize();
        int i = (int) (k % spec.blockSize());
        long base = (n * kBlocks + block) * blob;
        if (spec.bits() == 8) {
            return Byte.toUnsignedInt(b.get(Math.toIntExact(base + i)));
        }
        int packed = Byte.toUnsignedInt(b.get(Math.toIntExact(base + i / 2)));
        return (i & 1) == 0 ? packed & 0x0F : packed >>> 4;
    }

    /** The zero point of row {@code n}, block {@code block}. */
    public int zeroPoint(long n, long block) {
        if (zeroPoints == null) {
            return spec.defaultZeroPoint();
        }
        ByteBuffer b = zeroPoints.buffer();
        long base = n * zeroPointBytesPerRow(blocksPerRow(), spec.bits());
        if (spec.bits() == 8) {
            return Byte.toUnsignedInt(b.get(Math.toIntExact(base + block)));
        }
        int packed = Byte.toUnsignedInt(b.get(Math.toIntExact(base + block / 2)));
        return (block & 1) == 0 ? packed & 0x0F : packed >>> 4;
    }

    /** The scale of row {@code n}, block {@code block}. */
    public float scale(long n, long block) {
        return scales.buffer().getFloat(Math.toIntExact((n * blocksPerRow() + block) * 4));
    }

    /** The dequantized N×K matrix, row-major: {@code (code − zero point) · scale} in float, as ONNX Runtime does. */
    public float[] dequantize() {
        int n = Math.toIntExact(rows);
        int k = Math.toIntExact(columns);
        float[] out = new float[Math.multiplyExact(n, k)];
        ByteBuffer codeBytes = codes.buffer();
        ByteBuffer scaleBytes = scales.buffer();
        long kBlocks = blocksPerRow();
        int bs = spec.blockSize();
        int blob = spec.blobBytes();
        for (int r = 0; r < n; r++) {
            for (long j = 0; j < kBlocks; j++) {
                float scale = scaleBytes.getFloat(Math.toIntExact((r * kBlocks + j) * 4));
                int zp = zeroPoint(r, j);
                int base = Math.toIntExact((r * kBlocks + j) * blob);
                int start = Math.toIntExact(j * bs);
                int end = Math.min(k, start + bs);
                for (int c = start; c < end; c++) {
                    int i = c - start;
                    int q = spec.bits() == 8 ? Byte.toUnsignedInt(codeBytes.get(base + i))
                            : (Byte.toUnsignedInt(codeBytes.get(base + i / 2)) >>> ((i & 1) * 4)) & 0x0F;
                    out[r * k + c] = (q - zp) * scale;
                }
            }
        }
        return out;
    }
}
