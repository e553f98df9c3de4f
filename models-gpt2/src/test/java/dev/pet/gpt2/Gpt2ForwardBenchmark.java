package dev.pet.gpt2;

import dev.pet.hf.CausalLmGraphOptions;
import java.time.LocalDate;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Forward throughput of a GPT-2-small-shaped model (12 layers, width 768, 12 heads, 50257 vocabulary, seeded
 * random weights) at sequence 128, batch 1 and 8, through ONNX Runtime with default session options. Runs only on
 * request:
 *
 * <pre>./mvnw -B -q -pl models-gpt2 -am test -Dtest=Gpt2ForwardBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dpet.bench=true</pre>
 *
 * Results go to stdout and to {@code models-gpt2/target/benchmarks/gpt2-forward.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class Gpt2ForwardBenchmark {
    private static final int SEQ = 128;

    @Test
    void forwardTokensPerSecond() throws Exception {
        Gpt2Config c = Gpt2Config.preset("gpt2");
        long t0 = System.nanoTime();
        Gpt2Weights w = Gpt2Weights.random(c, 1);
        Gpt2Graph g = Gpt2Graph.build(w, CausalLmGraphOptions.training().withAttentionMask(false));
        StringBuilder report = new StringBuilder();
        try (Gpt2Session s = Gpt2Session.create(g)) {
            report.append(String.format("GPT-2 small shape (12x768, 12 heads, vocab 50257), seq %d, %s, %d cores,"
                    + " setup %.1f s%n", SEQ, LocalDate.now(), Runtime.getRuntime().availableProcessors(),
                    (System.nanoTime() - t0) / 1e9));
            for (int batch : new int[] {1, 8}) {
                long[][] ids = new long[batch][SEQ];
                SplittableRandom r = new SplittableRandom(batch);
                for (long[] row : ids) {
                    for (int i = 0; i < SEQ; i++) {
                        row[i] = r.nextInt(c.vocabSize());
                    }
                }
                for (int i = 0; i < 2; i++) {
                    s.run(ids, null).close();
                }
                int runs = batch == 1 ? 10 : 4;
                long start = System.nanoTime();
                for (int i = 0; i < runs; i++) {
                    try (Gpt2Output o = s.run(ids, null)) {
                        o.logits();
                    }
                }
                double sec = (System.nanoTime() - start) / 1e9 / runs;
                report.append(String.format("batch %d: %.1f ms/forward, %.0f tokens/s (mean of %d runs, logits "
                        + "copied to Java)%n", batch, sec * 1e3, batch * SEQ / sec, runs));
            }
        }
        System.out.print(report);
        java.nio.file.Path out = java.nio.file.Path.of("target/benchmarks/gpt2-forward.txt");
        java.nio.file.Files.createDirectories(out.getParent());
        java.nio.file.Files.writeString(out, report.toString());
    }
}
