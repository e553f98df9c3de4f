package dev.pet.engine.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.EngineOptions;
import dev.pet.engine.MatMulPeak;
import dev.pet.engine.OrtEngine;
import java.io.IOException;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
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
            AtomicFiles.writeString(Path.of("target", "benchmarks", "matmul.txt"), text);
            assertTrue(r.combinedGflops() > 0);
        }
    }
}
