package dev.pet.gpt2;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Forward + backward of the causal-LM loss of a GPT-2-small-shaped model (12 layers, width 768, vocabulary 50257,
 * seeded random weights) at batch 4, sequence 128, with only the 12 {@code c_attn} weights trainable (the issue's
 * benchmark setting; no optimizer update), next to the forward-only loss in the same run. Runs only on request:
 *
 * <pre>./mvnw -B -q -pl models-gpt2 -am test -Dtest=Gpt2BackwardBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dpet.bench=true</pre>
 *
 * Results go to stdout and to {@code models-gpt2/target/benchmarks/gpt2-backward.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class Gpt2BackwardBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = 128;
    /** Forward plus activation gradients (no frozen-weight gradients) at this shape, from the issue. */
    private static final double GFLOP = 258;

    @Test
    void cAttnOnlyTrainStepTime() throws Exception {
        Gpt2Config c = Gpt2Config.preset("gpt2");
        Gpt2Graph built = Gpt2Graph.build(Gpt2Weights.random(c, 1), CausalLmGraphOptions.training());
        Model model = built.model();
        Graph g = model.graph();
        Value loss = CausalLmLoss.append(g, Gpt2Graph.INPUT_IDS, Gpt2Graph.ATTENTION_MASK, Gpt2Graph.LOGITS,
                (int) model.opset());
        Model eval = model.copy();
        Map<String, Tensor> weights = new HashMap<>();
        List<Value> trainables = new ArrayList<>();
        for (String name : new ArrayList<>(g.initializers().keySet())) {
            if (name.endsWith("attn.c_attn.weight")) {
                weights.put(name, g.promoteInitializerToInput(name));
                trainables.add(g.requireValue(name));
            }
        }
        int before = g.nodes().size();
        long t0 = System.nanoTime();
        // -Dpet.bench.recompute=activations recomputes composed activations (the default keeps every value)
        Map<String, Value> grads = Autodiff.differentiate(g, (int) model.opset(), loss, trainables,
                System.getProperty("pet.bench.recompute", "none").equals("activations") ? Recompute.ACTIVATIONS
                        : Recompute.NONE).byName();
        double buildMs = (System.nanoTime() - t0) / 1e6;
        int added = g.nodes().size() - before;
        grads.values().forEach(g::addOutput);

        SplittableRandom r = new SplittableRandom(3);
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(c.vocabSize());
        }
        float[] mask = new float[BATCH * SEQ];
        java.util.Arrays.fill(mask, 1f);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        StringBuilder report = new StringBuilder(String.format("GPT-2 small shape, batch %d, seq %d, c_attn only, %s,"
                + " %d cores; backward graph built in %.0f ms (%d nodes)%n", BATCH, SEQ, LocalDate.now(),
                Runtime.getRuntime().availableProcessors(), buildMs, added));
        Map<String, OnnxTensor> feeds = new HashMap<>();
        feeds.put(CausalLmLoss.TOKENS, OnnxTensor.createTensor(env, LongBuffer.wrap(tokens), new long[] {BATCH,
                SEQ + 1}));
        feeds.put(CausalLmLoss.LOSS_MASK, OnnxTensor.createTensor(env, FloatBuffer.wrap(mask), new long[] {BATCH,
                SEQ}));
        double evalSec = time(env, OnnxSerializer.toBytes(eval), feeds, 3);
        for (Map.Entry<String, Tensor> e : weights.entrySet()) {
            feeds.put(e.getKey(), OnnxTensor.createTensor(env, e.getValue().buffer().asFloatBuffer(),
                    e.getValue().shape()));
        }
        double stepSec = time(env, OnnxSerializer.toBytes(model), feeds, 3);
        report.append(String.format("forward loss: %.0f ms; forward + c_attn gradients: %.0f ms = %.0f tokens/s,"
                + " %.0f GFLOP/s on the issue's %.0f GFLOP; backward/forward time %.2f%n", evalSec * 1e3,
                stepSec * 1e3, BATCH * SEQ / stepSec, GFLOP / stepSec, GFLOP, (stepSec - evalSec) / evalSec));
        feeds.values().forEach(OnnxTensor::close);
        System.out.print(report);
        java.nio.file.Path out = java.nio.file.Path.of("target/benchmarks/gpt2-backward.txt");
        java.nio.file.Files.createDirectories(out.getParent());
        java.nio.file.Files.writeString(out, report.toString());
    }

    /** With -Dpet.profile=true: milliseconds per run by op type, from ONNX Runtime's profile. */
    private static void printProfile(java.nio.file.Path file, int runs) throws Exception {
        com.fasterxml.jackson.databind.JsonNode events = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(file.toFile());
        Map<String, Double> byOp = new java.util.TreeMap<>();
        for (com.fasterxml.jackson.databind.JsonNode e : events) {
            com.fasterxml.jackson.databind.JsonNode args = e.get("args");
            if ("Node".equals(e.path("cat").asText()) && e.path("name").asText().endsWith("_kernel_time")
                    && args != null && args.has("op_name")) {
                String name = e.path("name").asText();
                String scope = name.startsWith("grad") ? "backward " : name.startsWith("recompute")
                        ? "recomputed " : "forward ";
                byOp.merge(scope + args.get("op_name").asText(), e.path("dur").asDouble() / 1e3 / runs,
                        Double::sum);
            }
        }
        byOp.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue(), a.getValue())).limit(25)
                .forEach(en -> System.out.printf("  %-32s %8.1f ms%n", en.getKey(), en.getValue()));
        System.out.println("--- " + file);
    }

    /** Median seconds per run after one warm-up, with a fresh session. */
    private static double time(OrtEnvironment env, byte[] model, Map<String, OnnxTensor> feeds, int runs)
            throws Exception {
        boolean profile = Boolean.getBoolean("pet.profile");
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            if (profile) {
                java.nio.file.Files.createDirectories(java.nio.file.Path.of("target/benchmarks"));
                o.enableProfiling("target/benchmarks/ort-profile");
            }
            return time(env, model, feeds, runs, o, profile);
        }
    }

    private static double time(OrtEnvironment env, byte[] model, Map<String, OnnxTensor> feeds, int runs,
            OrtSession.SessionOptions o, boolean profile) throws Exception {
        try (OrtSession s = env.createSession(model, o)) {
            Map<String, OnnxTensor> in = new HashMap<>();
            for (String name : s.getInputNames()) {
                in.put(name, feeds.get(name));
            }
            s.run(in).close();
            double[] t = new double[runs];
            for (int i = 0; i < runs; i++) {
                long start = System.nanoTime();
                s.run(in).close();
                t[i] = (System.nanoTime() - start) / 1e9;
            }
            java.util.Arrays.sort(t);
            if (profile) {
                printProfile(java.nio.file.Path.of(s.endProfiling()), runs + 1);
            }
            return t[runs / 2];
        }
    }
}
