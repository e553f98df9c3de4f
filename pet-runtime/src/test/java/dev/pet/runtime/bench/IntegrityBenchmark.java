package dev.pet.runtime.bench;

import dev.pet.onnx.io.Npy;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.checkpoint.Checksums;
import dev.pet.runtime.config.DataLoaderConfig;
import dev.pet.runtime.data.PackedDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the integrity checks cost per run: SHA-256 of a file (checkpoint files on resume, token cache entries on every
 * run) and the token-id range scan before training, on 32 Mi int32 tokens (128 MiB). Best of 3.
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='IntegrityBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true
 * </pre>
 */
class IntegrityBenchmark {
    @TempDir
    Path dir;

    @Test
    void checksumAndTokenScanThroughput() throws Exception {
        Assumptions.assumeTrue(Boolean.getBoolean("pet.bench"), "benchmarks run with -Dpet.bench=true");
        int n = 32 << 20;
        int[] ids = new int[n];
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < n; i++) {
            ids[i] = rnd.nextInt(50257);
        }
        Path npy = dir.resolve("tokens.npy");
        Npy.write(npy, Tensor.ofInts(ids, n));
        ids = null;
        PackedDataset data = PackedDataset.open(new DataLoaderConfig(DataLoaderConfig.Type.TOKENS, npy, false), 128,
                null, null, null);
        long bytes = Files.size(npy);
        long bestSha = Long.MAX_VALUE;
        long bestScan = Long.MAX_VALUE;
        for (int r = 0; r < 3; r++) {
            long t0 = System.nanoTime();
            Checksums.sha256(npy);
            long t1 = System.nanoTime();
            data.requireIdsBelow(50257, "bench");
            long t2 = System.nanoTime();
            bestSha = Math.min(bestSha, t1 - t0);
            bestScan = Math.min(bestScan, t2 - t1);
        }
        System.out.printf(Locale.ROOT, "%d MiB: sha256 %.0f ms (%.0f MiB/s), token-id scan %.0f ms (%.0f Mtokens/s)%n",
                bytes >> 20, bestSha / 1e6, bytes / 1048576.0 / (bestSha / 1e9), bestScan / 1e6, n / 1e6 / (bestScan / 1e9));
    }
}
