package dev.pet.onnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class BlockQuantizerTest {
    /** One block, written out by hand: codes two per byte, the even element in the low nibble. */
    @Test
    void packsFourBitCodesLowNibbleFirst() {
        float[] w = new float[32];
        w[0] = 1f;
        w[1] = -1f;
        QuantizedMatrix q = BlockQuantizer.quantize(Tensor.ofFloats(w, 1, 32), true,
                new QuantSpec(4, 32, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS));
        // scale = 1/7; 1 -> 7 + 8 = 15, -1 -> -7 + 8 = 1, 0 -> 8
        ByteBuffer codes = q.codes().buffer();
        assertEquals((byte) 0x1F, codes.get(0));
        for (int i = 1; i < 16; i++) {
            assertEquals((byte) 0x88, codes.get(i));
        }
        assertEquals(1f / 7, q.scale(0, 0));
        assertNull(q.zeroPoints());
        assertArrayEquals(new long[] {1, 1, 16}, q.codes().shape());
    }

    @Test
    void packsAsymmetricZeroPointsPerRowLowNibbleFirst() {
        // K = 96 with blocks of 32: three blocks, zero points in ceil(3 * 4 / 8) = 2 bytes per row.
        float[] w = new float[2 * 96];
        for (int i = 0; i < w.length; i++) {
            w[i] = i % 96 < 32 ? 1f + i % 7 : i % 96 < 64 ? -1f - i % 5 : (i % 11) - 5f;
        }
        QuantizedMatrix q = BlockQuantizer.quantize(Tensor.ofFloats(w, 2, 96), true,
                new QuantSpec(4, 32, false, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS));
        assertArrayEquals(new long[] {4}, q.zeroPoints().shape());
        ByteBuffer zp = q.zeroPoints().buffer();
        // block 0 is all positive: lo = 0 so zp 0; block 1 all negative: hi = 0 so zp 15
        assertEquals(0, zp.get(0) & 0x0F);
        assertEquals(15, (zp.get(0) >>> 4) & 0x0F);
        assertEquals(q.zeroPoint(1, 2), zp.get(3) & 0x0F);
    }

    @ParameterizedTest
    @CsvSource({"4, 32, true, true, 40, 96", "4, 64, false, true, 24, 128", "8, 128, true, false, 160, 40",
            "8, 32, false, false, 96, 24", "4, 128, true, false, 72, 48", "8, 64, true, true, 8, 100"})
    void matchesANaiveReferenceBitForBit(int bits, int blockSize, boolean symmetric, boolean kAlongColumns,
            int rows, int cols) {
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS);
        Random r = new Random(bits * 31L + blockSize + rows);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05 + (i % 17 == 0 ? 0.2 : 0));
        }
        QuantizedMatrix q = BlockQuantizer.quantize(Tensor.ofFloats(w, rows, cols), kAlongColumns, spec);
        int n = kAlongColumns ? rows : cols;
        int k = kAlongColumns ? cols : rows;
        int blocks = (k + blockSize - 1) / blockSize;
        assertArrayEquals(new long[] {n, blocks, blockSize * bits / 8}, q.codes().shape());
        float[] deq = q.dequantize();
        double sum = 0;
        double err = 0;
        for (int row = 0; row < n; row++) {
            for (int b = 0; b < blocks; b++) {
                float[] v = new float[blockSize];
                for (int i = 0; i < blockSize && b * blockSize + i < k; i++) {
                    int kk = b * blockSize + i;
                    v[i] = kAlongColumns ? w[row * cols + kk] : w[kk * cols + row];
                }
                Reference ref = reference(v, bits, symmetric);
                assertEquals(Float.floatToIntBits(ref.scale), Float.floatToIntBits(q.scale(row, b)),
                        "scale of row " + row + " block " + b);
                assertEquals(ref.zeroPoint, q.zeroPoint(row, b));
                for (int i = 0; i < blockSize; i++) {
                    // padding past K holds the code of 0
                    assertEquals(ref.codes[i], unpack(q.codes().buffer(), (row * blocks + b) * blockSize * bits / 8,
                            i, bits), "code " + i + " of row " + row + " block " + b);
                    if (b * blockSize + i < k) {
                        float expected = (ref.codes[i] - ref.zeroPoint) * ref.scale;
                        assertEquals(Float.floatToIntBits(expected),
                                Float.floatToIntBits(deq[row * k + b * blockSize + i]));
                        sum += (double) v[i] * v[i];
                        err += ((double) v[i] - expected) * ((double) v[i] - expected);
                        assertTrue(Math.abs(v[i] - expected) <= ref.scale * 0.5001f + 1e-9,
                                "rounding error above half a step");
                    }
                }
            }
        }
        assertEquals(Math.sqrt(err / sum), q.relativeError(), 1e-12);
        assertEquals(k % blockSize != 0, q.padded());
        // Streamed in slabs (one row or block-row at a time, then a few): the same bytes as in one piece.
        for (int slab : new int[] {1, 3 * cols * blockSize + 5}) {
            QuantizedMatrix s = BlockQuantizer.quantize(Tensor.ofFloats(w, rows, cols), kAlongColumns, spec, slab);
            assertEquals(q.codes().buffer(), s.codes().buffer(), "codes, slabs of " + slab);
            assertEquals(q.scales().buffer(), s.scales().buffer(), "scales, slabs of " + slab);
            if (!symmetric) {
                assertEquals(q.zeroPoints().buffer(), s.zeroPoints().buffer(), "zero points, slabs of " + slab);
            }
            assertEquals(q.relativeError(), s.relativeError(), 1e-12);
        }
    }

    @Test
    void readsHalfPrecisionWeights() {
        float[] w = {0.5f, -0.25f, 0.125f, 1f};
        float[] padded = new float[64];
        System.arraycopy(w, 0, padded, 0, 4);
        Tensor fp16 = Tensor.fromDoubles(DataType.FLOAT16, new double[] {0.5, -0.25, 0.125, 1}, 1, 4);
        QuantSpec spec = new QuantSpec(8, 32, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS);
        QuantizedMatrix a = BlockQuantizer.quantize(fp16, true, spec);
        QuantizedMatrix b = BlockQuantizer.quantize(Tensor.ofFloats(w, 1, 4), true, spec);
        assertEquals(a.codes().buffer(), b.codes().buffer());
        assertEquals(a.scales().buffer(), b.scales().buffer());
    }

    @Test
    void refusesBadSettingsNamingThem() {
        var bits = assertThrows(QuantSpec.Invalid.class, () -> new QuantSpec(3, 64, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS));
        assertEquals("bits", bits.key());
        assertTrue(bits.getMessage().contains("must be 4 or 8, found 3"), bits.getMessage());
        var block = assertThrows(QuantSpec.Invalid.class, () -> new QuantSpec(4, 48, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS));
        assertEquals("block_size", block.key());
        var compute = assertThrows(QuantSpec.Invalid.class, () -> QuantSpec.Compute.parse("fp16"));
        assertEquals("compute", compute.key());
    }

    private record Reference(float scale, int zeroPoint, int[] codes) {
    }

    /** The formulas of the class comment, written out once more in the plainest way. */
    private static Reference reference(float[] v, int bits, boolean symmetric) {
        int[] codes = new int[v.length];
        if (symmetric) {
            float amax = 0;
            for (float x : v) {
                amax = Math.max(amax, Math.abs(x));
            }
            int half = 1 << (bits - 1);
            float scale = amax == 0 ? 1f : amax / (half - 1);
            for (int i = 0; i < v.length; i++) {
                long c = Math.round((double) 0 + Math.rint(v[i] / scale));
                c = Math.max(-half, Math.min(half - 1, c));
                codes[i] = (int) c + half;
            }
            return new Reference(scale, half, codes);
        }
        float lo = 0;
        float hi = 0;
        for (float x : v) {
            lo = Math.min(lo, x);
            hi = Math.max(hi, x);
        }
        int max = (1 << bits) - 1;
        float scale = hi == lo ? 1f : (hi - lo) / max;
        int zp = (int) Math.max(0, Math.min(max, Math.rint(-lo / scale)));
        for (int i = 0; i < v.length; i++) {
            codes[i] = (int) Math.max(0, Math.min(max, Math.rint(v[i] / scale) + zp));
        }
        return new Reference(scale, zp, codes);
    }

    private static int unpack(ByteBuffer b, int base, int i, int bits) {
        if (bits == 8) {
            return b.get(base + i) & 0xFF;
        }
        int packed = b.get(base + i / 2) & 0xFF;
        return i % 2 == 0 ? packed & 0xF : packed >> 4;
    }
}
