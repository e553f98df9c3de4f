package dev.pet.runtime.train;

import dev.pet.runtime.train.QuantizedBaseTest.LossAndGradients;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * How far the first step on a quantized base lands from the float base at a real model size (the issue #13
 * correctness bar, which {@link QuantizedBaseTest} checks on tiny models): relative first-step loss error and LoRA
 * gradient cosine (LoRA r=4 on every linear, factors seeded random) for each quantization setting in
 * {@code -Dpet.bench.configs} (semicolon-separated YAML flow maps; default: the settings of
 * {@code QuantizedTrainStepBenchmark}'s rows) on the random preset {@code -Dpet.bench.model} (default gpt2).
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest=QuantizedAccuracyBenchmark -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.test.argLine=-Xmx6g
 * </pre>
 *
 * Results go to stdout and {@code pet-runtime/target/benchmarks/quantized-accuracy-MODEL.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class QuantizedAccuracyBenchmark {
    private static final String DEFAULT_CONFIGS = String.join(";",
            "{bits: 4, block_size: 64, compute: int8}",
            "{bits: 4, block_size: 128, compute: int8}",
            "{bits: 8, block_size: 64, compute: int8}",
            "{bits: 8, block_size: 128, compute: int8, lm_head: true}",
            "{bits: 4, block_size: 128, compute: int8, lm_head: true}",
            "{bits: 4, block_size: 64, compute: fp32}");

    @Test
    void firstStepAgainstTheFloatBase() throws Exception {
        String model = System.getProperty("pet.bench.model", "gpt2");
        List<String> configs = List.of(System.getProperty("pet.bench.configs", DEFAULT_CONFIGS).split(";"));
        QuantizedBaseTest.dir = Files.createTempDirectory("pet-quantized-accuracy");
        QuantizedBaseTest.start();
        try {
            compare(model, configs);
        } finally {
            QuantizedBaseTest.stop();
        }
    }

    private static void compare(String model, List<String> configs) throws java.io.IOException {
        LossAndGradients expected = firstStep(model, null);
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "%s, random weights, LoRA r=4 on every linear, batch %d x %d: float loss %.6f%n", model,
                QuantizedBaseTest.BATCH, QuantizedBaseTest.SEQ, expected.loss()));
        out.append(String.format(Locale.ROOT, "%-62s %14s %16s%n", "quantization", "loss rel. err", "grad cosine"));
        for (String config : configs) {
            LossAndGradients actual = firstStep(model, config.strip());
            out.append(String.format(Locale.ROOT, "%-62s %14.2e %16.5f%n", config.strip(),
                    Math.abs(actual.loss() - expected.loss()) / Math.abs(expected.loss()),
                    QuantizedBaseTest.cosine(expected.gradients(), actual.gradients())));
        }
        System.out.print(out);
        Path dir = Path.of("target", "benchmarks");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("quantized-accuracy-" + model + ".txt"), out);
    }

    private static LossAndGradients firstStep(String model, String quantization) {
        RunSetup s = QuantizedBaseTest.setup(model, quantization);
        return QuantizedBaseTest.lossAndGradients(s, QuantizedBaseTest.withRandomLora(s.pet));
    }
}
