package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsEveryDtype() {
        Tensor[] tensors = {
            Tensor.ofFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3),
            Tensor.ofDoubles(new double[] {Math.E}, 1),
            Tensor.ofLongs(new long[] {1L << 40, -1}, 2),
            Tensor.ofInts(new int[] {7, 8, 9}, 3),
            Tensor.fromDoubles(DataType.UINT16, new double[] {65535, 1}, 2),
            Tensor.fromDoubles(DataType.INT16, new double[] {-2, 1}, 2),
            Tensor.fromDoubles(DataType.UINT8, new double[] {255}, 1),
            Tensor.fromDoubles(DataType.INT8, new double[] {-128}, 1),
            Tensor.ofBools(new boolean[] {true, false}, 2),
            Tensor.fromDoubles(DataType.FLOAT16, new double[] {0.5}, 1),
            Tensor.scalar(3.5f),
        };
        for (int i = 0; i < tensors.length; i++) {
            Path f = dir.resolve("t" + i + ".npy");
            Npy.write(f, tensors[i]);
            Tensor back = Npy.read(f);
            assertEquals(tensors[i].dataType(), back.dataType());
            assertArrayEquals(tensors[i].shape(), back.shape());
            assertEquals(tensors[i].buffer(), back.buffer());
        }
    }

    private Path file(int version, String header, byte[] data) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) version, 0});
        byte[] h = header.getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer len = ByteBuffer.allocate(version == 1 ? 2 : 4).order(ByteOrder.LITTLE_ENDIAN);
        if (version == 1) {
            len.putShort((short) h.length);
        } else {
            len.putInt(h.length);
        }
        out.write(len.array());
        out.write(h);
        out.write(data);
        Path f = Files.createTempFile(dir, "hand", ".npy");
        Files.write(f, out.toByteArray());
        return f;
    }

    @Test
    void readsFilesWrittenAsNumpyDoes() throws Exception {
        byte[] data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(2).putInt(3).array();
        Tensor v1 = Npy.read(file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n", data));
        assertArrayEquals(new long[] {1, 2, 3}, v1.toLongArray());
        Tensor v2 = Npy.read(file(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3)}  \n", data));
        assertArrayEquals(new long[] {1, 3}, v2.shape());
    }

    @Test
    void rejectsWhatItCannotReadWithClearMessages() throws Exception {
        byte[] four = new byte[4];
        assertRejected(file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", four), "Fortran");
        assertRejected(file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", four), "big-endian");
        assertRejected(file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", four), "expected 8");
        assertRejected(file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }\n", four), "shape");
        assertRejected(file(1, "__import__('os')\n", four), "cannot parse");
        assertRejected(file(9, "{}", four), "version");
        Path tiny = dir.resolve("tiny.npy");
        Files.write(tiny, new byte[] {1, 2});
        assertRejected(tiny, "short");
    }

    private static void assertRejected(Path f, String fragment) {
        OnnxException e = assertThrows(OnnxException.class, () -> Npy.read(f));
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains(f.toString()), e.getMessage());
    }
}
