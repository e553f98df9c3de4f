package dev.pet.runtime.bench;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.MatMulPeak;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.llama.LlamaConfig;
import dev.pet.llama.LlamaProvider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.GraphTrainStep;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * LoRA (r=8 on q_proj and v_proj) train steps at real Llama-family shapes with random weights, sequence 128, batch 4:
 * tokens/s, peak RSS and the step as a fraction of the MatMul peak measured in the same JVM. One preset per JVM so
 * peak RSS is its own:
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='LlamaTrainStepBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.bench.model=smollm2-135m
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='LlamaTrainStepBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.bench.model=llama-3.2-1b
 * </pre>
 *
 * {@code -Dpet.bench.layers=N} keeps every shape but the number of layers; {@code -Dpet.bench.prepack=true} lets ONNX
 * Runtime pre-pack every weight; {@code -Dpet.bench.profile=DIR} writes ONNX Runtime's profile of every session to DIR
 * and prints the train step's kernel time by op type, phase and module ({@link OrtProfileSummary}; profiling slows
 * the step, so read its shares, not its times). The train-step graph's node count by op type is printed always.
 *
 * Results go to stdout and {@code pet-runtime/target/benchmarks/}.
 */
class LlamaTrainStepBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = 128;

    @Test
    void loraQv() throws Exception {
        Assumptions.assumeTrue(Boolean.getBoolean("pet.bench"), "benchmarks run with -Dpet.bench=true");
        String preset = System.getProperty("pet.bench.model", "smollm2-135m");
        // -Dpet.bench.layers=N keeps every shape but the depth, where the full model does not fit the machine.
        Integer layers = Integer.getInteger("pet.bench.layers");
        Map<String, Object> overrides = layers == null ? Map.of() : Map.of("num_hidden_layers", layers);
        long t0 = System.nanoTime();
        PretrainedModel base = new LlamaProvider().load(new ModelRequest(preset, overrides, 1));
        LlamaConfig c = LlamaConfig.fromMap(base.config(), preset);
        double loadSeconds = (System.nanoTime() - t0) / 1e9;
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 8, "lora_alpha", 16, "target_modules",
                List.of("q_proj", "v_proj"))));
        Random r = new Random(1);
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(c.vocabSize());
        }
        float[] mask = new float[BATCH * SEQ];
        Arrays.fill(mask, 1);
        Batch batch = new Batch(BATCH, SEQ, tokens, mask, DataPosition.START);
        var a = base.anatomy();
        int rows = BATCH * SEQ;
        long e = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long inner = c.intermediateSize();
        // The products of one layer (forward) and the LM head, for the peak measured in this JVM.
        List<MatMulPeak.Shape> shapes = List.of(
                new MatMulPeak.Shape("q_proj", rows, (int) e, (int) q),
                new MatMulPeak.Shape("k_proj", rows, (int) e, (int) kv),
                new MatMulPeak.Shape("gate_proj", rows, (int) e, (int) inner),
                new MatMulPeak.Shape("down_proj", rows, (int) inner, (int) e),
                new MatMulPeak.Shape("lm_head", rows, (int) e, c.vocabSize()));
        // Forward and activation gradients, no frozen-weight gradients: 2x the linear and LM head products, 3x the
        // attention products (scores and context forward; both operands of each backward).
        double linear = 2.0 * rows * c.numHiddenLayers() * (e * q + 2 * e * kv + q * e + 3 * e * inner);
        double attention = 2.0 * 2 * BATCH * c.numHiddenLayers() * c.numAttentionHeads() * (double) SEQ * SEQ
                * c.headDim();
        double head = 2.0 * rows * e * c.vocabSize();
        double stepGflop = (2 * linear + 3 * attention + 2 * head) / 1e9;
        StringBuilder out = new StringBuilder();
        // -Dpet.bench.prepack=true: ORT pre-packs every weight (off by default, see EngineOptions).
        EngineOptions options = Boolean.getBoolean("pet.bench.prepack")
                ? EngineOptions.defaults().withPrepackLimitBytes(Long.MAX_VALUE) : EngineOptions.defaults();
        String profile = System.getProperty("pet.bench.profile", "");
        Path profileDir = profile.isEmpty() ? null : Path.of(profile).toAbsolutePath();
        options = options.withProfileDirectory(profileDir);
        Set<Path> earlierProfiles = Set.of();
        try (OrtEngine engine = new OrtEngine(options)) {
            MatMulPeak.Report peak = MatMulPeak.measure(engine, shapes, 1.0);
            earlierProfiles = profileDir == null ? Set.of() : profiles(profileDir);
            long s0 = System.nanoTime();
            try (GraphTrainStep step = new GraphTrainStep(engine, pet.model(), new GraphTrainStep.ModelIo(
                    a.inputIds(), a.attentionMask(), a.logits()), pet.trainables(), OptimizerSpec.adamW(), 1,
                    (t, d) -> { })) {
                double setupSeconds = (System.nanoTime() - s0) / 1e9;
                step.step(List.of(batch), 1e-4, 1); // warm-up
                int n = 5;
                double[] secs = new double[n];
                for (int i = 0; i < n; i++) {
                    long t = System.nanoTime();
                    step.step(List.of(batch), 1e-4, i + 2);
                    secs[i] = (System.nanoTime() - t) / 1e9;
                }
                Arrays.sort(secs);
                double median = secs[n / 2];
                out.append(String.format("LoRA r=8 on q_proj+v_proj, %s shape (%d layers), B=%d, T=%d%n", preset,
                        c.numHiddenLayers(), BATCH, SEQ));
                out.append(String.format("  weight pre-packing        %s%n",
                        Boolean.getBoolean("pet.bench.prepack") ? "on" : "off (default)"));
        out.append(String.format("  trainable parameters      %,d%n", pet.trainableParameterCount()));
                out.append(String.format("  model load (random init)  %.1f s%n", loadSeconds));
                out.append(String.format("  graph build + sessions    %.1f s%n", setupSeconds));
                out.append(String.format("  step median of %d         %.3f s  (min %.3f, max %.3f)%n", n, median,
                        secs[0], secs[n - 1]));
                out.append(String.format("  tokens/s                  %.0f%n", BATCH * SEQ / median));
                out.append(String.format("  step work                 %.0f GFLOP%n", stepGflop));
                out.append(String.format("  MatMul peak (same run)    %.1f GFLOP/s%n", peak.combinedGflops()));
                out.append(String.format("  step vs peak              %.0f%% (%.0f GFLOP/s effective)%n",
                        100 * stepGflop / median / peak.combinedGflops(), stepGflop / median));
                out.append(String.format("  peak RSS                  %s%n", hwm()));
                Map<String, Integer> ops = new TreeMap<>();
                step.compiled().model().graph().nodes().forEach(nd -> ops.merge(nd.opType(), 1, Integer::sum));
                out.append(String.format("  train graph nodes         %d %s%n", ops.values().stream()
                        .mapToInt(Integer::intValue).sum(), ops));
            }
        }
        if (profileDir != null) {
            // Sessions write their profile when they close: the train step's is the file the peak did not leave.
            for (Path f : profiles(profileDir)) {
                if (!earlierProfiles.contains(f)) {
                    out.append("  ONNX Runtime profile of the train step (").append(f).append(")\n")
                            .append(OrtProfileSummary.read(f).format(25));
                }
            }
        }
        System.out.print(out);
        Path dir = Path.of("target", "benchmarks");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("llama-train-step-" + preset + ".txt"), out);
    }

    private static Set<Path> profiles(Path dir) throws java.io.IOException {
        try (var files = Files.list(dir)) {
            return files.filter(f -> f.toString().endsWith(".json")).collect(java.util.stream.Collectors.toSet());
        }
    }

    private static String hwm() throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("VmHWM")) {
                return l.substring(6).trim();
            }
        }
        return "n/a";
    }
}
