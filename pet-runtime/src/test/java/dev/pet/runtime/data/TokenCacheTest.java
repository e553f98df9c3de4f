package dev.pet.runtime.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A cache entry's three files are written through {@link AtomicFiles}. */
class TokenCacheTest {
    @TempDir
    Path dir;

    private List<String> names() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void anEntryIsStagedAsAtomicFilesTemporariesAndAppearsComplete() throws IOException {
        TokenCache cache = new TokenCache(dir);
        long n = 70_000; // more than one write buffer of tokens and of mask bytes
        TokenSequence seq = cache.getOrBuild("k", true, sink -> {
            for (long i = 0; i < n; i++) {
                sink.append(new long[] {i % 1000}, i % 3 != 0);
            }
            // Mid-build, only temporaries that AtomicFiles.deleteTemporaries recognises exist.
            List<String> during = names();
            assertFalse(during.isEmpty());
            assertTrue(during.stream().allMatch(f -> f.startsWith(AtomicFiles.TEMP_PREFIX)), during.toString());
        });
        assertEquals(List.of("k.mask", "k.sha256", "k.tokens"), names(), "no temporaries left");
        assertNull(TokenCache.verify(dir.resolve("k.tokens"), dir.resolve("k.mask"), dir.resolve("k.sha256")),
                "the checksums written while streaming match the files");
        assertEquals(n, seq.size());
        assertEquals(999, seq.token(999));
        assertFalse(seq.inLoss(3));
        assertTrue(seq.inLoss(4));
    }

    @Test
    void aFailedBuildLeavesNoFiles() throws IOException {
        TokenCache cache = new TokenCache(dir);
        assertThrows(IllegalStateException.class, () -> cache.getOrBuild("k", true, sink -> {
            sink.append(new long[] {1, 2, 3}, true);
            throw new IllegalStateException("corpus unreadable");
        }));
        assertEquals(List.of(), names());
        assertFalse(cache.contains("k"));
    }
}
