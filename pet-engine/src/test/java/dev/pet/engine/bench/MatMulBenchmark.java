package dev.pet.engine.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.EngineOptions;
import dev.pet.engine.MatMulPeak;
import dev.pet.engine.OrtEngine;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * ORT MatMul float32 GFLOP/s at GPT-2-small train-step shapes. Runs only on request:
 * {@code ./mvnw -B -o -pl pet-engine -am test -Dtest=MatMulBenchmark -Dsurefire.failIfNoSpecifiedTests=false
 * -Dpet.bench=true}; prints the table and writes it to {@code pet-engine/target/benchmarks/matmul.txt}.
 */
class MatMulBenchmark {
    @Test
    @EnabledIfSystemProperty(named = "pet.bench", matches = "true")
    void gpt2SmallShapes() throws IOException {
        try (OrtEngine engine = new OrtEngine(EngineOptions.defaults())) {
            MatMulPeak.Report r = MatMulPeak.measure(engine, MatMulPeak.gpt2SmallShapes(true), 2.0);
            String text = MatMulPeak.format(r);
            System.out.println(text);
            Path dir = Path.of("target", "benchmarks");
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "matmul", ".tmp");
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, dir.resolve("matmul.txt"), StandardCopyOption.REPLACE_EXISTING,
                    StandardCopyOption.ATOMIC_MOVE);
            assertTrue(r.combinedGflops() > 0);
        }
    }

    @Test
    void measuresATinyProduct() {
        try (OrtEngine engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1))) {
            MatMulPeak.Report r = MatMulPeak.measure(engine, List.of(new MatMulPeak.Shape("tiny", 8, 16, 4)), 0.0);
            MatMulPeak.Result t = r.results().get(0);
            assertTrue(t.iterations() >= 3 && t.medianSeconds() > 0 && Double.isFinite(t.gflops()), t.toString());
            assertTrue(MatMulPeak.format(r).contains("tiny"));
        }
    }
}
