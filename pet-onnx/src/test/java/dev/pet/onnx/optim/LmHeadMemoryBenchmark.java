package dev.pet.onnx.optim;

import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Gradients;
import dev.pet.onnx.autodiff.Ort;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Peak memory of the language-model head, the causal-LM loss and their backward pass alone: embeddings [V, E],
 * a trainable E×E matrix (so gradients flow through the logits), logits = h·Eᵀ (tied, as GPT-2 and Llama-3.2-1B),
 * {@link CausalLmLoss}, and the trainable's gradient. One configuration per JVM; it reports the run's peak RSS above
 * the resident size after session creation, which is what the run's tensors cost:
 *
 * <pre>
 * ./mvnw -B -q -o -pl pet-onnx test -Dtest=LmHeadMemoryBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dpet.bench=true -Dpet.bench.vocab=50257 -Dpet.bench.width=768 -Dpet.bench.loss=sparse
 * </pre>
 *
 * {@code pet.bench.loss=dense} rebuilds the backward pass of the log-softmax as it was before the sparse
 * gradient (an Identity between LogSoftmax and GatherElements makes the gradient materialise as a scatter into
 * zeros, then g - exp(y)·Σg). {@code pet.bench.chunks=N} computes the head and loss over N row chunks
 * ({@link LossChunks}; 1, the default, is unchunked) and {@code pet.bench.recompute=chunks} recomputes each chunk in
 * the backward pass (as {@code runner_config.recompute} does).
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class LmHeadMemoryBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = 128;

    @Test
    void lmHeadAndLoss() throws Exception {
        int vocab = Integer.getInteger("pet.bench.vocab", 50257);
        int width = Integer.getInteger("pet.bench.width", 768);
        boolean dense = System.getProperty("pet.bench.loss", "sparse").equals("dense");
        int chunks = Integer.getInteger("pet.bench.chunks", 1);
        boolean recompute = System.getProperty("pet.bench.recompute", "none").equals("chunks");
        Random r = new Random(1);
        Graph g = new Graph("lm_head");
        GraphBuilder b = new GraphBuilder(g, 17);
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch", "sequence"));
        Value table = b.initializer("wte", Tensor.fromDoubles(DataType.FLOAT, gaussian(r, (long) vocab * width, 0.02),
                vocab, width));
        Value a = b.initializer("A", Tensor.fromDoubles(DataType.FLOAT, gaussian(r, (long) width * width,
                1.0 / Math.sqrt(width)), width, width));
        Value h = b.matMul(b.gather(table, ids, 0), a);
        h.rename("hidden");
        b.output(b.matMul(h, b.transpose(table, 1, 0)), "logits");
        Model m = new Model(g, 17);
        CausalLmLoss.Appended appended = CausalLmLoss.append(g, "input_ids", null, "logits", 17, true,
                new LossChunks("hidden", chunks));
        if (appended.chunks() != chunks) {
            throw new IllegalStateException("not chunked: " + appended.unchunkedBecause());
        }
        if (dense) {
            for (Node n : List.copyOf(g.nodes())) {
                if (n.opType().equals("GatherElements")) {
                    n.setInput(0, b.identity(n.input(0)));
                }
            }
        }
        Gradients grads = Autodiff.differentiate(g, 17, g.requireValue(CausalLmLoss.LOSS), List.of(a),
                recompute ? Recompute.NONE.withSegments(appended.segments()) : Recompute.NONE);
        b.output(grads.get("A"), "grad.A");
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(vocab);
        }
        float[] mask = new float[BATCH * SEQ];
        java.util.Arrays.fill(mask, 1);
        Map<String, Ort.Feed> feeds = Map.of(CausalLmLoss.TOKENS, Ort.Feed.longs(tokens, BATCH, SEQ + 1),
                CausalLmLoss.LOSS_MASK, Ort.Feed.floats(mask, BATCH, SEQ));
        try (Ort ort = new Ort(m, false)) { // memory patterns off, as pet-engine's sessions
            System.gc();
            long before = status("VmRSS");
            Files.writeString(Path.of("/proc/self/clear_refs"), "5"); // resets VmHWM to the current RSS
            long t0 = System.nanoTime();
            double loss = ort.run(feeds, CausalLmLoss.LOSS, "grad.A").get(CausalLmLoss.LOSS)[0];
            double secs = (System.nanoTime() - t0) / 1e9;
            long peak = status("VmHWM");
            double copy = (double) BATCH * SEQ * vocab * 4 / (1 << 20);
            System.out.printf("LM head + loss + backward, vocab %d, width %d, %s gradient, %d chunks%s: loss %.4f, run"
                    + " %.2f s, peak above session %.0f MiB = %.2f logits copies (%.0f MiB each)%n", vocab, width,
                    dense ? "dense" : "sparse", chunks, recompute ? " recomputed" : "", loss, secs,
                    (peak - before) / 1024.0, (peak - before) / 1024.0 / copy, copy);
        }
    }

    private static double[] gaussian(Random r, long n, double scale) {
        double[] d = new double[Math.toIntExact(n)];
        for (int i = 0; i < d.length; i++) {
            d[i] = r.nextGaussian() * scale;
        }
        return d;
    }

    /** A /proc/self/status field in KiB. */
    private static long status(String field) throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith(field + ":")) {
                return Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException(field);
    }
}
