package dev.pet.runtime.bench;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.GraphTrainStep;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * LoRA r=8 (c_attn) train steps on a GPT-2-shaped random model with a float base and with quantized bases, side by
 * side in one JVM so the ratios hold on a loaded machine ({@code -Dpet.bench.model=gpt2|gpt2-medium}, default
 * gpt2), sequence 128, batch 4:
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='QuantizedTrainStepBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.test.argLine=-Xmx3g
 * </pre>
 *
 * Results go to stdout and {@code pet-runtime/target/benchmarks/quantized-train-step-MODEL.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class QuantizedTrainStepBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = 128;

    @Test
    void floatAgainstQuantizedBases() throws Exception {
        String name = System.getProperty("pet.bench.model", "gpt2");
        StringBuilder out = new StringBuilder(name + ", LoRA r=8 on c_attn, batch " + BATCH + " x " + SEQ + "\n");
        out.append(String.format("%-28s %10s %12s %10s %10s %12s%n", "base", "quantize", "build+sess", "step", "tok/s",
                "vs fp32"));
        double fp32 = 0;
        for (QuantSpec spec : Arrays.asList(null, new QuantSpec(4, 64, true, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_NBITS),
                new QuantSpec(8, 64, true, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_NBITS), new QuantSpec(4, 64, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.MATMUL_NBITS))) {
            PretrainedModel base = new Gpt2Provider().load(new ModelRequest(name, Map.of(), 1));
            long q0 = System.nanoTime();
            if (spec != null) {
                base = new Quantization(spec, null).apply(base, true).model();
            }
            double quantizeSeconds = (System.nanoTime() - q0) / 1e9;
            LoraAdapter lora = new LoraAdapter();
            PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 8, "lora_alpha", 16)));
            double median;
            double setup;
            try (OrtEngine engine = OrtEngine.cpu()) {
                var a = base.anatomy();
                long s0 = System.nanoTime();
                try (GraphTrainStep step = new GraphTrainStep(engine, pet.model(), new GraphTrainStep.ModelIo(
                        a.inputIds(), a.attentionMask(), a.logits()), pet.trainables(), OptimizerSpec.adamW(), 1,
                        (t, d) -> { })) {
                    setup = (System.nanoTime() - s0) / 1e9;
                    Batch batch = batch(base.vocabSize());
                    step.step(List.of(batch), 1e-4, 1); // warm-up
                    double[] secs = new double[5];
                    for (int i = 0; i < secs.length; i++) {
                        long t = System.nanoTime();
                        step.step(List.of(batch), 1e-4, i + 2);
                        secs[i] = (System.nanoTime() - t) / 1e9;
                    }
                    Arrays.sort(secs);
                    median = secs[secs.length / 2];
                }
            }
            double tokens = BATCH * SEQ / median;
            if (spec == null) {
                fp32 = tokens;
            }
            out.append(String.format("%-28s %9.1fs %11.1fs %9.3fs %10.0f %11.2fx%n",
                    spec == null ? "fp32" : spec.describe().replace("block_size", "bs").replace("symmetric=true ", ""),
                    quantizeSeconds, setup, median, tokens, tokens / fp32));
            System.out.print(out);
        }
        Path dir = Path.of("target", "benchmarks");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("quantized-train-step-" + name + ".txt"), out);
    }

    private static Batch batch(long vocab) {
        Random r = new Random(1);
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt((int) vocab);
        }
        float[] mask = new float[BATCH * SEQ];
        Arrays.fill(mask, 1);
        return new Batch(BATCH, SEQ, tokens, mask, DataPosition.START);
    }
}
