package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir
    Path dir;

    private List<String> names(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void replacesAFileAndCreatesParents() throws IOException {
        Path file = dir.resolve("a/b/out.bin");
        AtomicFiles.write(file, new byte[] {1, 2, 3});
        AtomicFiles.write(file, ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(new byte[] {4, 5})));
        assertArrayEquals(new byte[] {4, 5}, Files.readAllBytes(file));
        assertEquals(List.of("out.bin"), names(file.getParent()), "no temporary left beside it");
    }

    @Test
    void failingWriterKeepsTheOldContentAndLeavesNoTemporary() throws IOException {
        Path file = dir.resolve("state.json");
        AtomicFiles.writeString(file, "old");
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(file, ch -> {
            AtomicFiles.writeFully(ch, ByteBuffer.wrap("half".getBytes()));
            throw new IOException("disk full");
        }));
        assertEquals("disk full", e.getMessage());
        assertThrows(IllegalStateException.class, () -> AtomicFiles.writeStream(file, out -> {
            out.write('x');
            throw new IllegalStateException("encoder bug");
        }));
        assertEquals("old", Files.readString(file));
        assertEquals(List.of("state.json"), names(dir));
    }

    @Test
    void linesEndWithNewlines() throws IOException {
        Path file = dir.resolve("m.jsonl");
        AtomicFiles.writeLines(file, List.of("{\"step\":1}", "{\"step\":2}"));
        assertEquals("{\"step\":1}\n{\"step\":2}\n", Files.readString(file));
    }

    @Test
    void replacesADirectoryOnlyWhenTheNewOneIsComplete() throws IOException {
        Path target = dir.resolve("checkpoint-1");
        AtomicFiles.replaceDirectory(target, d -> Files.writeString(d.resolve("x"), "1"));
        assertThrows(IOException.class, () -> AtomicFiles.replaceDirectory(target, d -> {
            Files.writeString(d.resolve("x"), "2");
            throw new IOException("killed");
        }));
        assertEquals("1", Files.readString(target.resolve("x")), "the old directory survives a failed write");
        assertEquals(List.of("checkpoint-1"), names(dir), "the partial directory is removed");
        AtomicFiles.replaceDirectory(target, d -> Files.writeString(d.resolve("y"), "3"));
        assertEquals(List.of("y"), names(target), "replaced as a whole, not merged");
        assertEquals(List.of("checkpoint-1"), names(dir), "the old copy is deleted");
    }

    @Test
    void deletesOnlyItsOwnTemporaries() throws IOException {
        Files.createDirectories(dir.resolve(AtomicFiles.TEMP_PREFIX + "checkpoint-9-abc/sub"));
        Files.writeString(dir.resolve(AtomicFiles.TEMP_PREFIX + "metrics.jsonl-x.tmp"), "partial");
        Files.writeString(dir.resolve("keep.txt"), "k");
        AtomicFiles.deleteTemporaries(dir);
        assertEquals(List.of("keep.txt"), names(dir));
        AtomicFiles.deleteTemporaries(dir.resolve("missing"));
        AtomicFiles.deleteTree(dir.resolve("missing"));
        assertFalse(Files.exists(dir.resolve("missing")));
        assertTrue(Files.exists(dir.resolve("keep.txt")));
    }
}
