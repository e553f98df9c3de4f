package dev.pet.runtime.bench;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.llama.LlamaProvider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.BlockBoundaries;
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
 * Peak resident memory and step time of LoRA on large random presets, fp32 or with a quantized base: one
 * configuration per JVM, so VmHWM is its own. GPT-2 presets train {@code c_attn}, Llama presets {@code q_proj} and
 * {@code v_proj}, r=8, AdamW. Properties: {@code pet.bench.model} (a GPT-2 or Llama preset), {@code pet.bench.quant}
 * ({@code none}, {@code 4} or {@code 8}: blocks of 64, symmetric, fp32 compute, every linear but the LM head),
 * {@code pet.bench.batch} (4), {@code pet.bench.seq} (128), {@code pet.bench.steps} (3, after one warm-up step),
 * {@code pet.bench.recompute} ({@code none} or {@code blocks}: per-block activation recomputation),
 * {@code pet.bench.kernel} ({@code matmul_nbits} or {@code dequantize}), {@code pet.bench.compute} ({@code fp32} or
 * {@code int8}), {@code pet.bench.lmhead} ({@code true}: the output head quantized too), {@code pet.bench.embeddings}
 * ({@code true}: the token-embedding table too), {@code pet.bench.chunks}
 * ({@code auto}, the default: the head and loss over the row chunks a run derives; or a count, 1 for unchunked).
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='ScaleBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.bench.model=gpt2-xl -Dpet.bench.quant=4 -Dpet.test.argLine=-Xmx2g
 * </pre>
 *
 * Results go to stdout and {@code pet-runtime/target/benchmarks/scale-MODEL-QUANT.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class ScaleBenchmark {
    @Test
    void loraOnALargeRandomPreset() throws Exception {
        String name = System.getProperty("pet.bench.model", "gpt2-xl");
        String quant = System.getProperty("pet.bench.quant", "4");
        int batchSize = Integer.getInteger("pet.bench.batch", 4);
        int seq = Integer.getInteger("pet.bench.seq", 128);
        int steps = Integer.getInteger("pet.bench.steps", 3);
        boolean recompute = System.getProperty("pet.bench.recompute", "none").equals("blocks");
        boolean gpt2 = name.startsWith("gpt2");
        StringBuilder out = new StringBuilder();
        out.append(String.format("%s, quant %s, LoRA r=8 on %s, B=%d, T=%d, recompute %s%n", name, quant,
                gpt2 ? "c_attn" : "q_proj+v_proj", batchSize, seq, recompute ? "blocks" : "none"));
        long t0 = System.nanoTime();
        ModelRequest request = new ModelRequest(name, Map.of(), 1);
        PretrainedModel base = gpt2 ? new Gpt2Provider().load(request) : new LlamaProvider().load(request);
        mark(out, "load (random init to scratch)", t0);
        if (!quant.equals("none")) {
            long q0 = System.nanoTime();
            QuantSpec spec = new QuantSpec(Integer.parseInt(quant), 64, true,
                    QuantSpec.Compute.valueOf(System.getProperty("pet.bench.compute", "fp32").toUpperCase()),
                    QuantSpec.Kernel.valueOf(System.getProperty("pet.bench.kernel", "matmul_nbits").toUpperCase()));
            out.append("  ").append(spec.describe()).append('\n');
            boolean lmHead = Boolean.getBoolean("pet.bench.lmhead");
            out.append("  lm_head quantized: ").append(lmHead).append('\n');
            boolean embeddings = Boolean.getBoolean("pet.bench.embeddings");
            out.append("  embeddings quantized: ").append(embeddings).append('\n');
            var applied = new Quantization(spec, null, lmHead, embeddings).apply(base, true);
            base = applied.model();
            mark(out, "quantize " + applied.result().layers().size() + " linears (" + applied.result().parameters()
                    / 1_000_000 + "M params, " + applied.result().bytes() / (1 << 20) + " MiB)", q0);
        }
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 8, "lora_alpha", 16, "target_modules",
                gpt2 ? List.of("c_attn") : List.of("q_proj", "v_proj"))));
        Batch batch = batch(base.vocabSize(), batchSize, seq);
        try (OrtEngine engine = new OrtEngine(engineOptions(recompute))) {
            var a = base.anatomy();
            Recompute plan = recompute ? Recompute.segments(BlockBoundaries.of(pet.model().graph(), a))
                    : Recompute.NONE;
            long s0 = System.nanoTime();
            try (GraphTrainStep step = new GraphTrainStep(engine, pet.model(), new GraphTrainStep.ModelIo(
                    a.inputIds(), a.attentionMask(), a.logits(), plan, TrainStepBenchmark.chunks(pet.model().graph(),
                    a, (long) batchSize * seq)), pet.trainables(), OptimizerSpec.adamW(), 1, (t, d) -> { })) {
                out.append("  loss chunks: ").append(step.lossChunks()).append(step.unchunkedBecause() == null ? ""
                        : " (unchunked: " + step.unchunkedBecause() + ")").append('\n');
                mark(out, "graph build + sessions", s0);
                long w0 = System.nanoTime();
                step.step(List.of(batch), 1e-4, 1);
                mark(out, "warm-up step", w0);
                double[] secs = new double[steps];
                for (int i = 0; i < steps; i++) {
                    long t = System.nanoTime();
                    step.step(List.of(batch), 1e-4, i + 2);
                    secs[i] = (System.nanoTime() - t) / 1e9;
                }
                Arrays.sort(secs);
                double median = secs[steps / 2];
                out.append(String.format("  steps %s s, median %.2f s, %.1f tokens/s%n", Arrays.toString(secs), median,
                        batchSize * seq / median));
            }
        }
        out.append("  ").append(status("VmHWM")).append("  ").append(status("RssAnon")).append("  ")
                .append(status("RssFile")).append(" (at the end)\n");
        System.out.print(out);
        Path dir = Path.of("target", "benchmarks");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("scale-" + name + "-" + quant + (recompute ? "-blocks" : "") + "-chunks-"
                + System.getProperty("pet.bench.chunks", "auto") + ".txt"), out);
    }

    /**
     * As RunSetup.engine (planned step memory only without recomputation), unless {@code -Dpet.bench.planned} or
     * {@code -Dpet.bench.arena=false} say otherwise; {@code -Dpet.bench.profile=DIR} writes ONNX Runtime's profiles
     * (with the arena's bytes in use per node: bench/ort_arena.py reads them).
     */
    private static EngineOptions engineOptions(boolean recompute) {
        String profile = System.getProperty("pet.bench.profile");
        return EngineOptions.defaults()
                .withPlannedStepMemory(Boolean.parseBoolean(System.getProperty("pet.bench.planned",
                        String.valueOf(!recompute))))
                .withCpuArena(Boolean.parseBoolean(System.getProperty("pet.bench.arena", "true")))
                .withProfileDirectory(profile == null ? null : Path.of(profile));
    }

    private static void mark(StringBuilder out, String what, long since) {
        String line = String.format("  %-60s %.1f s  (%s)%n", what, (System.nanoTime() - since) / 1e9,
                status("VmRSS"));
        out.append(line);
        System.out.print(line);
    }

    private static String status(String key) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith(key + ":")) {
                    return l.replaceAll("\\s+", " ");
                }
            }
        } catch (java.io.IOException e) {
            return key + " n/a";
        }
        return key + " n/a";
    }

    private static Batch batch(long vocab, int batchSize, int seq) {
        Random r = new Random(1);
        long[] tokens = new long[batchSize * (seq + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt((int) vocab);
        }
        float[] mask = new float[batchSize * seq];
        Arrays.fill(mask, 1);
        return new Batch(batchSize, seq, tokens, mask, DataPosition.START);
    }
}
