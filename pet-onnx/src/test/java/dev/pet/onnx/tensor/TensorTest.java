package dev.pet.onnx.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TensorTest {
    @Test
    void factoriesStoreLittleEndianRowMajor() {
        Tensor t = Tensor.ofFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertEquals(DataType.FLOAT, t.dataType());
        assertArrayEquals(new long[] {2, 3}, t.shape());
        assertEquals(24, t.byteSize());
        ByteBuffer b = t.buffer();
        assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
        assertEquals(Float.floatToIntBits(1f), Integer.reverseBytes(b.duplicate().order(ByteOrder.BIG_ENDIAN)
                .getInt(0)));
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.toFloatArray());
    }

    @Test
    void castsBetweenFloatingAndIntegerTypes() {
        Tensor d = Tensor.ofDoubles(new double[] {0.5, -1.25, 3}, 3);
        assertArrayEquals(new double[] {0.5, -1.25, 3}, d.castTo(DataType.FLOAT16).toDoubleArray());
        assertArrayEquals(new double[] {0.5, -1.25, 3}, d.castTo(DataType.BFLOAT16).toDoubleArray());
        assertArrayEquals(new long[] {0, -1, 3}, d.castTo(DataType.INT64).toLongArray());
        assertArrayEquals(new long[] {7, 8}, Tensor.ofInts(new int[] {7, 8}, 2).toLongArray());
        assertArrayEquals(new double[] {1, 0, 1}, Tensor.ofBools(new boolean[] {true, false, true}, 3)
                .toDoubleArray());
    }

    @Test
    void widensHalfPrecisionToFloat32BitExactlyIntoADirectBuffer() {
        // Every 16-bit pattern: each half/bfloat16 value is exactly representable in float32, so the widening must
        // equal the scalar conversion (the reference) bit for bit, NaN payloads aside.
        int n = 1 << 16;
        ByteBuffer bits = ByteBuffer.allocate(2 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            bits.putShort((short) i);
        }
        for (DataType half : new DataType[] {DataType.FLOAT16, DataType.BFLOAT16}) {
            Tensor t = Tensor.of(half, new long[] {256, 256}, bits.duplicate().flip());
            Tensor f = t.castTo(DataType.FLOAT);
            assertEquals(DataType.FLOAT, f.dataType());
            assertArrayEquals(new long[] {256, 256}, f.shape());
            assertTrue(f.buffer().isDirect(), "ready for ONNX Runtime without another copy");
            float[] got = f.toFloatArray();
            for (int i = 0; i < n; i++) {
                float want = half == DataType.FLOAT16 ? Half.fp16ToFloat((short) i) : Half.bf16ToFloat((short) i);
                if (Float.isNaN(want)) {
                    assertTrue(Float.isNaN(got[i]), half + " pattern " + i);
                } else {
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i]), half + " pattern " + i);
                }
            }
        }
        Tensor d = Tensor.ofDoubles(new double[] {1e300, -0.1, 3}, 3).castTo(DataType.FLOAT);
        assertArrayEquals(new float[] {Float.POSITIVE_INFINITY, -0.1f, 3f}, d.toFloatArray());
    }

    @Test
    void rejectsDataThatDoesNotMatchTheShape() {
        OnnxException e = assertThrows(OnnxException.class,
                () -> Tensor.of(DataType.FLOAT, new long[] {2, 2}, ByteBuffer.allocate(12)));
        assertTrue(e.getMessage().contains("needs 16 bytes but has 12"), e.getMessage());
        assertThrows(OnnxException.class, () -> Tensor.zeros(DataType.FLOAT, 2, -1));
        assertThrows(ArithmeticException.class, () -> Tensor.checkedElementCount(new long[] {1L << 40, 1L << 40}));
    }

    @Test
    void reshapeSharesBytesAndChecksCount() {
        Tensor t = Tensor.ofLongs(new long[] {1, 2, 3, 4, 5, 6}, 6);
        Tensor r = t.reshape(3, 2);
        assertArrayEquals(t.toLongArray(), r.toLongArray());
        assertThrows(OnnxException.class, () -> t.reshape(4, 2));
    }

    @Test
    void hugeZeroTensorsStreamWithoutAllocating() throws Exception {
        Tensor big = Tensor.zeros(DataType.FLOAT, 1L << 29); // 2 GiB of zeros, never materialised
        assertEquals(1L << 31, big.byteSize());
        assertThrows(OnnxException.class, big::buffer);
        Tensor small = Tensor.zeros(DataType.FLOAT, 1 << 19); // above the 64 MiB inline limit? no: 2 MiB, heap
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        small.data().writeTo(Channels.newChannel(out));
        assertEquals(small.byteSize(), out.size());
        ZeroData z = new ZeroData(3_000_000);
        ByteArrayOutputStream out2 = new ByteArrayOutputStream();
        z.writeTo(Channels.newChannel(out2));
        assertEquals(3_000_000, out2.size());
        for (byte x : out2.toByteArray()) {
            assertEquals(0, x);
        }
    }

    @Test
    void findsTheFirstNonFiniteElementInEveryFloatingType() {
        float[] v = {1, -2, 3e4f, 0, 5};
        assertEquals(-1, Tensor.ofFloats(v, 5).firstNonFinite());
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] w = v.clone();
            w[3] = bad;
            w[4] = bad;
            Tensor f = Tensor.ofFloats(w, 5);
            assertEquals(3, f.firstNonFinite(), "float " + bad);
            assertEquals(3, f.castTo(DataType.DOUBLE).firstNonFinite(), "double " + bad);
            assertEquals(3, f.castTo(DataType.FLOAT16).firstNonFinite(), "fp16 " + bad);
            assertEquals(3, f.castTo(DataType.BFLOAT16).firstNonFinite(), "bf16 " + bad);
        }
        // 65504 is fp16's largest finite value; a bit pattern with a full exponent is not.
        assertEquals(-1, Tensor.ofFloats(new float[] {65504f, -65504f}, 2).castTo(DataType.FLOAT16).firstNonFinite());
        assertEquals(-1, Tensor.ofLongs(new long[] {Long.MAX_VALUE}, 1).firstNonFinite(), "integers are finite");
    }

    @Test
    void findsTheFirstNonFiniteElementPastTheFirstScanBlocks() {
        // 300,000 elements: several of the scan's bulk blocks; the bad values sit in a later block, the first of
        // them just after a block boundary, and finite values of the largest magnitude come before them.
        int n = 300_000;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (i % 7 - 3) * 1e3f;
        }
        v[5] = Float.MAX_VALUE;
        v[6] = -Float.MAX_VALUE;
        assertEquals(-1, Tensor.ofFloats(v, n).firstNonFinite());
        int bad = 3 * 65_536 + 1;
        v[bad] = Float.NEGATIVE_INFINITY;
        v[bad + 10] = Float.NaN;
        Tensor f = Tensor.ofFloats(v, n);
        assertEquals(bad, f.firstNonFinite(), "float");
        assertEquals(bad, f.castTo(DataType.DOUBLE).firstNonFinite(), "double");
        // Float's largest values round to infinity in the 16-bit types.
        v[5] = 0;
        v[6] = 0;
        assertEquals(bad, Tensor.ofFloats(v, n).castTo(DataType.BFLOAT16).firstNonFinite(), "bf16");
        assertEquals(bad, Tensor.ofFloats(v, n).castTo(DataType.FLOAT16).firstNonFinite(), "fp16");
    }

    @Test
    void findsNonFiniteElementsOfFileRegionsAcrossReadChunks(@TempDir Path dir) throws Exception {
        // 700,000 floats (2.8 MB) at an odd offset: three 1 MiB read chunks, the NaN in the third.
        int n = 700_000;
        int header = 13;
        ByteBuffer b = ByteBuffer.allocate(header + 4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat(header + 4 * i, i * 1e-3f);
        }
        Path file = dir.resolve("weights.bin");
        Files.write(file, b.array());
        assertEquals(-1, new Tensor(DataType.FLOAT, new long[] {n}, new FileData(file, header, 4L * n))
                .firstNonFinite());
        int bad = 650_001;
        // A NaN with every mantissa bit set: as the high half of a double it is a NaN too.
        b.putInt(header + 4 * bad, 0x7FFFFFFF);
        b.putFloat(header + 4 * (n - 1), Float.NaN);
        Files.write(file, b.array());
        assertEquals(bad, new Tensor(DataType.FLOAT, new long[] {n}, new FileData(file, header, 4L * n))
                .firstNonFinite());
        assertEquals(bad / 2, new Tensor(DataType.DOUBLE, new long[] {n / 2}, new FileData(file, header, 4L * n))
                .firstNonFinite(), "doubles: the NaN's high half makes element bad/2 non-finite");
    }

    @Test
    void zeroTensorsAreFiniteWithoutBeingMaterialised() {
        Tensor big = Tensor.zeros(DataType.FLOAT, 1L << 29);
        assertEquals(-1, big.firstNonFinite());
    }
}
