package dev.pet.runtime.bench;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.MatMulPeak;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.BlockBoundaries;
import dev.pet.runtime.train.GraphTrainStep;
import dev.pet.runtime.train.HeadChunking;
import dev.pet.onnx.optim.LossChunks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Train-step speed and memory on a GPT-2-small-shaped model (12 layers, 768 wide, 50257 vocabulary, random weights),
 * sequence 128, batch 4. Run one configuration per JVM so peak RSS is its own:
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='TrainStepBenchmark#cAttnFull' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='TrainStepBenchmark#loraR8' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true
 * </pre>
 *
 * Results go to stdout and {@code pet-runtime/target/benchmarks/}. {@code -Dpet.bench.model=gpt2-medium},
 * {@code -Dpet.bench.seq=1024} and {@code -Dpet.bench.recompute=none|activations|blocks} (nothing recomputed, the
 * default; composed activations; or per-block recomputation as {@code runner_config.recompute}) change the shape and
 * the backward pass; {@code -Dpet.bench.chunks=auto|N} the row chunks of the head and loss ({@code auto}, the default:
 * what a run derives, {@link HeadChunking}; 1 for the unchunked graph).
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class TrainStepBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = Integer.getInteger("pet.bench.seq", 128);
    private static final String MODEL = System.getProperty("pet.bench.model", "gpt2");
    /** none (the default), activations or blocks. */
    private static final String RECOMPUTE = System.getProperty("pet.bench.recompute", "none");
    /** auto (what a run derives) or a number of chunks (1: unchunked). */
    private static final String CHUNKS = System.getProperty("pet.bench.chunks", "auto");

    @Test
    void cAttnFull() throws Exception {
        run("c_attn weights trainable (full)", false);
    }

    @Test
    void loraR8() throws Exception {
        run("LoRA r=8 on c_attn", true);
    }

    private static void run(String label, boolean lora) throws Exception {
        long t0 = System.nanoTime();
        PretrainedModel base = new Gpt2Provider().load(new ModelRequest(MODEL, Map.of("seq_length", SEQ), 1));
        double loadSeconds = (System.nanoTime() - t0) / 1e9;
        var model = base.model();
        List<String> trainables = new ArrayList<>();
        long trainableParams = 0;
        if (lora) {
            LoraAdapter a = new LoraAdapter();
            PetModel pet = a.getPetModel(base, a.parseConfig(Map.of("r", 8, "lora_alpha", 16)));
            model = pet.model();
            trainables.addAll(pet.trainables());
            trainableParams = pet.trainableParameterCount();
        } else {
            for (var e : model.graph().initializers().entrySet()) {
                if (e.getKey().matches("transformer\\.h\\.\\d+\\.attn\\.c_attn\\.weight")) {
                    trainables.add(e.getKey());
                    trainableParams += e.getValue().elementCount();
                }
            }
        }
        Random r = new Random(1);
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(50257);
        }
        float[] mask = new float[BATCH * SEQ];
        Arrays.fill(mask, 1);
        Batch batch = new Batch(BATCH, SEQ, tokens, mask, DataPosition.START);
        var a = base.anatomy();
        StringBuilder out = new StringBuilder();
        try (OrtEngine engine = OrtEngine.cpu()) {
            MatMulPeak.Report peak = MatMulPeak.measure(engine, MatMulPeak.gpt2SmallShapes(false), 1.0);
            long s0 = System.nanoTime();
            Recompute recompute = switch (RECOMPUTE) {
                case "none" -> Recompute.NONE;
                case "activations" -> Recompute.ACTIVATIONS;
                case "blocks" -> Recompute.segments(BlockBoundaries.of(model.graph(), a));
                default -> throw new IllegalArgumentException("pet.bench.recompute: none, activations or blocks");
            };
            LossChunks chunks = chunks(model.graph(), a, BATCH * SEQ);
            try (GraphTrainStep step = new GraphTrainStep(engine, model, new GraphTrainStep.ModelIo(a.inputIds(),
                    a.attentionMask(), a.logits(), recompute, chunks), trainables, OptimizerSpec.adamW(), 1,
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
                // Forward + activation gradients, no frozen-weight gradients: about 3x the forward MatMul work of
                // the 12 blocks plus 2x the LM head (logits and their input gradient).
                double stepGflop = 258;
                out.append(String.format("%s, %s, batch %d, sequence %d, recompute %s, loss chunks %d%s%n", label,
                        MODEL, BATCH, SEQ, RECOMPUTE, step.lossChunks(), step.unchunkedBecause() == null ? ""
                        : " (unchunked: " + step.unchunkedBecause() + ")"));
                out.append(String.format("  trainable parameters      %,d%n", trainableParams));
                out.append(String.format("  model load (random init)  %.1f s%n", loadSeconds));
                out.append(String.format("  graph build (autodiff)    %.2f s%n", step.graphBuildNanos() / 1e9));
                out.append(String.format("  graph build + sessions    %.1f s%n", setupSeconds));
                out.append(String.format("  step median of %d         %.3f s  (min %.3f, max %.3f)%n", n, median, secs[0],
                        secs[n - 1]));
                out.append(String.format("  tokens/s                  %.0f%n", BATCH * SEQ / median));
                out.append(String.format("  MatMul peak (same run)    %.1f GFLOP/s%n", peak.combinedGflops()));
                if (MODEL.equals("gpt2") && SEQ == 128) { // the 258 GFLOP estimate is for this shape
                    out.append(String.format("  step vs peak              %.0f%% (%.0f GFLOP/s effective)%n",
                            100 * stepGflop / median / peak.combinedGflops(), stepGflop / median));
                }
                out.append(String.format("  peak RSS                  %s%n", hwm()));
            }
        }
        System.out.print(out);
        Path dir = Path.of("target", "benchmarks");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("train-step-" + (lora ? "lora" : "cattn") + "-" + MODEL + "-" + SEQ
                + "-" + RECOMPUTE + "-chunks-" + CHUNKS + ".txt"), out);
    }

    /** The chunks {@code pet.bench.chunks} asks for: what a run derives, or a fixed count (1: none). */
    static LossChunks chunks(dev.pet.onnx.ir.Graph graph, dev.pet.api.ModelAnatomy a, long rows) {
        String c = System.getProperty("pet.bench.chunks", "auto");
        if (c.equals("auto")) {
            return HeadChunking.of(graph, a, rows);
        }
        int n = Integer.parseInt(c);
        List<String> blocks = BlockBoundaries.of(graph, a);
        return n == 1 ? null : new LossChunks(blocks.get(blocks.size() - 1), n);
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
