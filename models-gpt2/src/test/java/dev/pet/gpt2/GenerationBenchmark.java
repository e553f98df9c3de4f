package dev.pet.gpt2;

import dev.pet.api.LinearModule;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtEngine;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.quant.QuantizedLinears;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Generation speed with and without the key/value cache at GPT-2-small shape (12 layers, width 768, vocabulary
 * 50257, seeded random weights): prompt 32 tokens, 64 new tokens, greedy, batch 1, through pet-engine's
 * {@link Generator}. Reports tokens/s of both and the cached path's per-token time early (tokens 2-17) and late
 * (tokens 49-64), which a cache keeps flat. Runs only on request:
 *
 * <pre>./mvnw -B -q -o -pl models-gpt2 -am test -Dtest=GenerationBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dpet.bench=true</pre>
 *
 * {@code -Dpet.bench.kernel=matmul_nbits|matmul_integer} quantizes the blocks' linears first (4 and 8 bits, int8
 * compute). Results go to stdout and to {@code models-gpt2/target/benchmarks/generation.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class GenerationBenchmark {
    private static final int PROMPT = 32;
    private static final int NEW = 64;

    @Test
    void tokensPerSecondWithAndWithoutCache() throws Exception {
        Gpt2Config c = Gpt2Config.preset("gpt2");
        Gpt2Weights w = Gpt2Weights.random(c, 1);
        long[] prompt = new long[PROMPT];
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < PROMPT; i++) {
            prompt[i] = r.nextInt(c.vocabSize());
        }
        GenerationConfig greedy = GenerationConfig.greedy(NEW);
        StringBuilder report = new StringBuilder(String.format("GPT-2 small shape, prompt %d, %d new tokens, greedy, "
                + "batch 1, %s, %d cores%n", PROMPT, NEW, LocalDate.now(), Runtime.getRuntime().availableProcessors()));
        Gpt2Graph graph = Gpt2Graph.build(w, CausalLmGraphOptions.inference());
        String kernel = System.getProperty("pet.bench.kernel", "none");
        if (!kernel.equals("none")) {
            // every block linear quantized (the head stays float): 4-bit MatMulNBits or 8-bit matmul_integer
            boolean integer = kernel.equals("matmul_integer");
            QuantSpec spec = new QuantSpec(integer ? 8 : 4, 64, true, QuantSpec.Compute.INT8,
                    QuantSpec.Kernel.parse(kernel));
            QuantizedLinears.quantize(graph.model(), graph.anatomy().linears().stream().map(LinearModule::weight)
                    .toList(), spec, false);
            report.append(spec.describe()).append('\n');
        }
        try (OrtEngine engine = OrtEngine.cpu()) {
            Generator g = new Generator(engine.compile(graph.model()), c.nPositions());
            g.generate(prompt, GenerationConfig.greedy(4)); // warm-up
            for (int round = 0; round < 2; round++) {
                List<Long> stamps = new ArrayList<>();
                long t0 = System.nanoTime();
                long[] cached = g.generate(List.of(prompt), greedy, null, (row, t) -> stamps.add(System.nanoTime()))
                        .get(0);
                double cachedSeconds = (System.nanoTime() - t0) / 1e9;
                t0 = System.nanoTime();
                long[] uncached = g.generateWithoutCache(prompt, greedy);
                double uncachedSeconds = (System.nanoTime() - t0) / 1e9;
                if (!java.util.Arrays.equals(cached, uncached)) {
                    throw new AssertionError("cached and uncached generation differ");
                }
                double early = (stamps.get(16) - stamps.get(0)) / 16e6;
                double late = (stamps.get(NEW - 1) - stamps.get(NEW - 17)) / 16e6;
                report.append(String.format("round %d: with cache %.1f tokens/s (%.2f s), without cache %.1f tokens/s "
                        + "(%.2f s), ratio %.2fx; cached per-token ms: tokens 2-17 %.1f, tokens 49-64 %.1f%n", round + 1,
                        NEW / cachedSeconds, cachedSeconds, NEW / uncachedSeconds, uncachedSeconds,
                        uncachedSeconds / cachedSeconds, early, late));
            }
        }
        System.out.print(report);
        Path out = Path.of("target", "benchmarks", "generation.txt");
        Files.createDirectories(out.getParent());
        Files.writeString(out, report);
    }
}
