package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.onnx.tensor.ZeroData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class ScratchFileTest {
    @Test
    void appendedTensorsAreRegionsOfTheFileWithTheSameValuesAtPageAlignedOffsets() {
        Tensor a = Tensor.ofFloats(new float[] {1.5f, -2f, 3.25f}, 3);
        Tensor zeros = new Tensor(DataType.UINT8, new long[] {5000}, new ZeroData(5000));
        Tensor c = Tensor.ofLongs(new long[] {7, -9}, 2);
        try (ScratchFile f = ScratchFile.create("test")) {
            List<Tensor> first = f.append(List.of(a, zeros));
            List<Tensor> second = f.append(List.of(c));
            assertEquals(ScratchFile.folder(), f.path().getParent());
            assertArrayEquals(a.toFloatArray(), first.get(0).toFloatArray());
            assertArrayEquals(new double[5000], first.get(1).toDoubleArray());
            assertArrayEquals(c.toLongArray(), second.get(0).toLongArray());
            long previousEnd = 0;
            for (Tensor t : List.of(first.get(0), first.get(1), second.get(0))) {
                FileData fd = assertInstanceOf(FileData.class, t.data());
                assertEquals(f.path(), fd.file());
                assertEquals(0, fd.offset() % 4096, "offset " + fd.offset());
                assertTrue(fd.offset() >= previousEnd, "regions overlap");
                previousEnd = fd.offset() + fd.byteSize();
            }
        }
    }

    @Test
    void closeDeletesTheFile() {
        ScratchFile f = ScratchFile.create("test");
        f.append(List.of(Tensor.ofFloats(new float[] {1}, 1)));
        assertTrue(Files.exists(f.path()));
        f.close();
        assertFalse(Files.exists(f.path()));
    }

    @Test
    void fileIsDeletedOnceNoTensorReadsIt() throws Exception {
        Path path = appendAndForget();
        for (int i = 0; i < 100 && Files.exists(path); i++) {
            System.gc();
            Thread.sleep(50);
        }
        assertFalse(Files.exists(path), path + " outlived every tensor read from it");
    }

    /** A file whose only reference is a tensor that is then dropped; checks that the tensor keeps the file. */
    private static Path appendAndForget() throws Exception {
        ScratchFile f = ScratchFile.create("test");
        Path path = f.path();
        Tensor t = f.append(List.of(Tensor.ofFloats(new float[] {4, 5}, 2))).get(0);
        f = null;
        System.gc();
        Thread.sleep(50);
        assertTrue(Files.exists(path), "deleted while a tensor still reads it");
        assertArrayEquals(new float[] {4, 5}, t.toFloatArray());
        return path;
    }

    @Test
    void deletesFilesThatDeadProcessesLeftBehind() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        Files.createDirectories(ScratchFile.folder());
        Path left = ScratchFile.folder().resolve(p.pid() + "-1-random.bin");
        Path alive = ScratchFile.folder().resolve(ProcessHandle.current().pid() + "-0-kept.bin");
        Files.write(left, new byte[] {1});
        Files.write(alive, new byte[] {1});
        try (ScratchFile f = ScratchFile.create("test")) {
            assertFalse(Files.exists(left));
            assertTrue(Files.exists(alive));
        } finally {
            Files.deleteIfExists(alive);
        }
    }
}
