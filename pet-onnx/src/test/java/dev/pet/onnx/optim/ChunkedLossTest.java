package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The head and loss over row chunks ({@link LossChunks}) compute the unchunked graph's loss and gradients, in float64
 * so that the only difference is summation order (1e-12 relative), and the chunked gradients match central finite
 * differences. A tiny model stands in for a language model: embeddings, a trainable block, a final LayerNorm, a tied
 * head Gemm with a LoRA branch on it, and the logits reshaped back to [B, S, V].
 */
class ChunkedLossTest {
    private static final int VOCAB = 7;
    private static final int WIDTH = 4;
    private static final int BATCH = 2;
    private static final int SEQ = 5;
    private static final List<String> TRAINABLES = List.of("A", "ln.w", "ln.b", "lora.A", "lora.B");

    /** How the head is built; the variants that must not be chunked. */
    enum Head { PLAIN, READS_INPUT_SHAPE, ACROSS_ROWS, DROPOUT }

    private static Model model(Head head) {
        Random r = new Random(5);
        Graph g = new Graph("tiny-lm");
        GraphBuilder b = new GraphBuilder(g, 17);
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch", "sequence"));
        Value table = weight(b, "wte", r, 1.0, VOCAB, WIDTH);
        Value x = b.gather(table, ids, 0);
        Value h = b.add(x, b.tanh(b.matMul(x, weight(b, "A", r, 0.5, WIDTH, WIDTH))));
        h = b.identity(h);
        h.rename("hidden");
        Value ln = b.layerNorm(h, weight(b, "ln.w", r, 0.3, WIDTH), weight(b, "ln.b", r, 0.3, WIDTH), 1e-5f);
        if (head == Head.READS_INPUT_SHAPE) {
            // a scale computed from the input's length: a chunk would see another length
            ln = b.mul(ln, b.cast(b.shape(ids, 1, 2), DataType.DOUBLE));
        } else if (head == Head.ACROSS_ROWS) {
            ln = b.op("Softmax", List.of(ln), dev.pet.onnx.ir.Attribute.of("axis", 1L));
        } else if (head == Head.DROPOUT) {
            ln = b.dropout(ln, b.constant(DataType.DOUBLE, 0.1), b.constant(Tensor.ofBools(new boolean[] {true})))
                    .output(0);
        }
        Value rows = b.flatten(ln, 2);
        Value logits2d = b.gemm(rows, table, null, 1f, 1f, false, true);
        Value lora = b.mul(b.matMul(b.matMul(rows, weight(b, "lora.A", r, 0.5, WIDTH, 2)),
                weight(b, "lora.B", r, 0.5, 2, VOCAB)), b.constant(DataType.DOUBLE, 2.0));
        Value sum = b.add(logits2d, lora);
        Value logits = b.reshape(sum, b.concat(List.of(b.shape(ids), b.ints(VOCAB)), 0));
        b.output(logits, "logits");
        return new Model(g, 17);
    }

    private static Value weight(GraphBuilder b, String name, Random r, double scale, long... shape) {
        double[] d = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = r.nextGaussian() * scale;
        }
        return b.initializer(name, Tensor.fromDoubles(DataType.DOUBLE, d, shape));
    }

    /** Loss, loss_sum and every trainable's gradient of the (chunked) training graph. */
    private static Map<String, double[]> lossAndGradients(Head head, int chunks, boolean recompute,
            Map<String, double[]> trainableValues, int batch, int seq) {
        Model m = model(head);
        Graph g = m.graph();
        if (trainableValues != null) {
            trainableValues.forEach((name, v) -> g.setInitializer(name,
                    Tensor.fromDoubles(DataType.DOUBLE, v, g.initializer(name).shape())));
        }
        CausalLmLoss.Appended appended = CausalLmLoss.append(g, "input_ids", null, "logits", 17, true,
                new LossChunks("hidden", chunks));
        List<Value> t = TRAINABLES.stream().map(g::requireValue).toList();
        Recompute plan = recompute ? Recompute.NONE.withSegments(appended.segments()) : Recompute.NONE;
        Gradients grads = Autodiff.differentiate(g, 17, appended.loss(), t, plan);
        GraphBuilder b = new GraphBuilder(g, 17);
        List<String> outs = new ArrayList<>(List.of(CausalLmLoss.LOSS, CausalLmLoss.LOSS_SUM));
        for (String name : TRAINABLES) {
            b.output(grads.get(name), "grad." + name);
            outs.add("grad." + name);
        }
        try (Ort ort = new Ort(m)) {
            Map<String, double[]> out = new LinkedHashMap<>(ort.run(feeds(batch, seq), outs.toArray(String[]::new)));
            out.put("chunks", new double[] {appended.chunks()});
            return out;
        }
    }

    private static Map<String, Ort.Feed> feeds(int batch, int seq) {
        Random r = new Random(batch * 100 + seq);
        long[] tokens = new long[batch * (seq + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(VOCAB);
        }
        float[] mask = new float[batch * seq];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 4 == 3 ? 0 : 1;
        }
        return Map.of(CausalLmLoss.TOKENS, Ort.Feed.longs(tokens, batch, seq + 1),
                CausalLmLoss.LOSS_MASK, Ort.Feed.floats(mask, batch, seq));
    }

    private static void assertClose(Map<String, double[]> want, Map<String, double[]> got, double rel, String what) {
        for (String k : want.keySet()) {
            if (k.equals("chunks")) {
                continue;
            }
            double[] w = want.get(k);
            double[] h = got.get(k);
            assertEquals(w.length, h.length, what + " " + k);
            for (int i = 0; i < w.length; i++) {
                assertEquals(w[i], h[i], rel * Math.max(1, Math.abs(w[i])), what + " " + k + "[" + i + "]");
            }
        }
    }

    /** 10 rows: 2 chunks of 5, 3 chunks of 4+4+2, 16 chunks (10 of one row, 6 empty). */
    @ParameterizedTest
    @ValueSource(ints = {2, 3, 16})
    void chunkedLossAndGradientsEqualTheUnchunked(int chunks) {
        Map<String, double[]> whole = lossAndGradients(Head.PLAIN, 1, false, null, BATCH, SEQ);
        assertEquals(1, whole.get("chunks")[0]);
        for (boolean recompute : new boolean[] {false, true}) {
            Map<String, double[]> chunked = lossAndGradients(Head.PLAIN, chunks, recompute, null, BATCH, SEQ);
            assertEquals(chunks, chunked.get("chunks")[0]);
            assertClose(whole, chunked, 1e-12, chunks + " chunks, recompute " + recompute);
        }
    }

    @Test
    void oneRowInFourChunks() {
        Map<String, double[]> whole = lossAndGradients(Head.PLAIN, 1, false, null, 1, 1);
        assertClose(whole, lossAndGradients(Head.PLAIN, 4, true, null, 1, 1), 1e-12, "1 row");
        assertClose(whole, lossAndGradients(Head.PLAIN, 4, false, null, 1, 1), 1e-12, "1 row");
    }

    /** Central differences of the chunked (and recomputed) graph's loss in float64, coordinate by coordinate. */
    @Test
    void chunkedGradientsMatchFiniteDifferences() {
        Map<String, double[]> base = lossAndGradients(Head.PLAIN, 3, true, null, BATCH, SEQ);
        Model ref = model(Head.PLAIN);
        Map<String, double[]> values = new HashMap<>();
        for (String name : TRAINABLES) {
            values.put(name, ref.graph().initializer(name).toDoubleArray());
        }
        double h = 1e-6;
        for (String name : TRAINABLES) {
            double[] grad = base.get("grad." + name);
            for (int i = 0; i < grad.length; i += Math.max(1, grad.length / 5)) {
                Map<String, double[]> plus = new HashMap<>(values);
                Map<String, double[]> minus = new HashMap<>(values);
                double[] p = values.get(name).clone();
                double[] q = values.get(name).clone();
                p[i] += h;
                q[i] -= h;
                plus.put(name, p);
                minus.put(name, q);
                double fd = (lossAndGradients(Head.PLAIN, 3, true, plus, BATCH, SEQ).get(CausalLmLoss.LOSS)[0]
                        - lossAndGradients(Head.PLAIN, 3, true, minus, BATCH, SEQ).get(CausalLmLoss.LOSS)[0])
                        / (2 * h);
                assertEquals(fd, grad[i], 1e-6 * Math.max(1, Math.abs(fd)), name + "[" + i + "]");
            }
        }
    }

    @Test
    void evaluationFormEqualsTheUnchunked() {
        double[] want = null;
        for (int chunks : new int[] {1, 3, 16}) {
            Model m = model(Head.PLAIN);
            CausalLmLoss.Appended a = CausalLmLoss.append(m.graph(), "input_ids", null, "logits", 17, false,
                    new LossChunks("hidden", chunks));
            assertEquals(chunks, a.chunks());
            try (Ort ort = new Ort(m)) {
                double[] got = ort.run(feeds(BATCH, SEQ), CausalLmLoss.LOSS_SUM, CausalLmLoss.LOSS).values().stream()
                        .mapToDouble(d -> d[0]).toArray();
                if (want == null) {
                    want = got;
                } else {
                    assertEquals(want[0], got[0], 1e-12 * Math.abs(want[0]));
                    assertEquals(want[1], got[1], 1e-12 * Math.abs(want[1]));
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"READS_INPUT_SHAPE", "ACROSS_ROWS", "DROPOUT"})
    void headsThatAreNotRowByRowStayUnchunked(String variant) {
        Head head = Head.valueOf(variant);
        Model m = model(head);
        CausalLmLoss.Appended a = CausalLmLoss.append(m.graph(), "input_ids", null, "logits", 17, true,
                new LossChunks("hidden", 3));
        assertEquals(1, a.chunks());
        assertTrue(a.segments().isEmpty());
        assertNotNull(a.unchunkedBecause());
        String expected = switch (head) {
            case READS_INPUT_SHAPE -> "depends on the model's inputs";
            case ACROSS_ROWS -> "Softmax";
            default -> "random";
        };
        assertTrue(a.unchunkedBecause().contains(expected), a.unchunkedBecause());
        assertEquals(1, m.graph().nodes().stream().filter(n -> n.opType().equals("LogSoftmax")).count());
        if (head == Head.READS_INPUT_SHAPE) {
            // the fallback is today's graph: the same loss and gradients as asking for no chunks
            assertClose(lossAndGradients(head, 1, false, null, BATCH, SEQ),
                    lossAndGradients(head, 3, true, null, BATCH, SEQ), 0, "fallback");
        }
    }

    @Test
    void unchunkedWhenOneChunkIsAsked() {
        Model m = model(Head.PLAIN);
        CausalLmLoss.Appended a = CausalLmLoss.append(m.graph(), "input_ids", null, "logits", 17, true,
                new LossChunks("hidden", 1));
        assertEquals(1, a.chunks());
        assertNull(a.unchunkedBecause());
        assertThrows(OnnxException.class, () -> CausalLmLoss.append(model(Head.PLAIN).graph(), "input_ids", null,
                "logits", 17, true, new LossChunks("no-such-value", 2)));
        assertThrows(IllegalArgumentException.class, () -> new LossChunks("hidden", 0));
    }

    /**
     * Recomputed chunks run one after another in the backward pass: chunk c's recomputed log-softmax depends on
     * chunk c+1's, so ONNX Runtime cannot run them all first; and no forward log-softmax is read by the backward.
     */
    @Test
    void recomputedChunksWaitForTheNextChunksGradient() {
        Model m = model(Head.PLAIN);
        Graph g = m.graph();
        CausalLmLoss.Appended a = CausalLmLoss.append(g, "input_ids", null, "logits", 17, true,
                new LossChunks("hidden", 3));
        int forward = g.nodes().size();
        Autodiff.differentiate(g, 17, a.loss(), TRAINABLES.stream().map(g::requireValue).toList(),
                Recompute.NONE.withSegments(a.segments()));
        List<Node> backward = g.nodes().subList(forward, g.nodes().size());
        for (Node n : g.nodes().subList(0, forward)) {
            if (n.opType().equals("LogSoftmax")) {
                assertTrue(n.output(0).uses().stream().noneMatch(backward::contains), n.describe()
                        + " is read by the backward pass");
            }
        }
        List<Node> recomputed = new ArrayList<>();
        for (int c = 0; c < 3; c++) {
            String chunk = "/chunk" + c + "/";
            recomputed.add(g.nodes().stream().filter(n -> n.opType().equals("LogSoftmax")
                    && n.name().startsWith("recompute/") && n.name().contains(chunk)).findFirst().orElseThrow());
        }
        assertTrue(upstream(recomputed.get(0)).contains(recomputed.get(1)), "chunk 0 waits for chunk 1");
        assertTrue(upstream(recomputed.get(1)).contains(recomputed.get(2)), "chunk 1 waits for chunk 2");
        assertTrue(!upstream(recomputed.get(2)).contains(recomputed.get(1)), "chunk 2 runs first");
    }

    private static Set<Node> upstream(Node n) {
        Set<Node> seen = new HashSet<>();
        Deque<Node> work = new ArrayDeque<>(List.of(n));
        while (!work.isEmpty()) {
            for (Value in : work.pop().inputs()) {
                if (in != null && in.producer() != null && seen.add(in.producer())) {
                    work.push(in.producer());
                }
            }
        }
        return seen;
    }

    @Test
    void chunkCountKeepsOneChunksLogitsNear64MiB() {
        assertEquals(4, LossChunks.countFor(512, 128256, 4)); // 263 MB
        assertEquals(2, LossChunks.countFor(512, 50257, 4)); // 103 MB
        assertEquals(1, LossChunks.countFor(24, 50257, 4));
        assertEquals(3, LossChunks.countFor(3, 100_000_000, 4)); // never more chunks than rows
        assertThrows(IllegalArgumentException.class, () -> LossChunks.countFor(0, 10, 4));
    }
}
