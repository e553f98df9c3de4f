package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.autodiff.Ort;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Repeatedly running the train-step graph in ONNX Runtime fits a repeated batch. */
class TrainEndToEndTest {
    private static Value param(GraphBuilder b, String name, Random r, double scale, long... shape) {
        float[] d = new float[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (r.nextGaussian() * scale);
        }
        return b.initializer(name, Tensor.ofFloats(d, shape));
    }

    @Test
    void mlpRegressionLossFallsBelowTenPercentOfStart() {
        Random r = new Random(3);
        Graph g = new Graph("mlp");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "n", 4L));
        Value y = b.input("y", TensorType.symbolic(DataType.FLOAT, "n", 1L));
        Value h = b.tanh(b.add(b.matMul(x, param(b, "fc1.weight", r, 0.5, 4, 16)), param(b, "fc1.bias", r, 0.1, 16)));
        Value pred = b.add(b.matMul(h, param(b, "fc2.weight", r, 0.5, 16, 1)), param(b, "fc2.bias", r, 0.1, 1));
        Value diff = b.sub(pred, y);
        b.output(b.op("ReduceMean", List.of(b.mul(diff, diff)), Attribute.of("keepdims", 0L)), "mse");
        TrainGraphs graphs = TrainStepGraph.build(new Model(g, 17), "mse",
                List.of("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"),
                OptimizerOptions.adamW().withWeightDecay(0.01, OptimizerOptions.BIASES_AND_NORMS));
        float[] xs = new float[32 * 4];
        float[] ys = new float[32];
        for (int n = 0; n < 32; n++) {
            double s = 0;
            for (int i = 0; i < 4; i++) {
                xs[n * 4 + i] = (float) r.nextGaussian();
                s += xs[n * 4 + i] * (i + 1) * 0.3;
            }
            ys[n] = (float) Math.sin(s);
        }
        Map<String, Ort.Feed> batch = Map.of("x", Ort.Feed.floats(xs, 32, 4), "y", Ort.Feed.floats(ys, 32, 1));
        try (OptimizerTest.Runner run = new OptimizerTest.Runner(graphs)) {
            run.step(batch, 1, 0.02f);
            double start = run.lastLoss;
            for (int t = 2; t <= 300; t++) {
                run.step(batch, t, 0.02f);
            }
            assertTrue(run.lastLoss < 0.1 * start, "loss " + start + " -> " + run.lastLoss);
        }
    }

    /** Embedding, LayerNorm, GELU MLP and an LM head trained with {@link CausalLmLoss} on one repeated batch. */
    @Test
    void tinyCausalLmFitsARepeatedBatch() {
        int vocab = 11;
        Random r = new Random(5);
        Graph g = new Graph("tiny-lm");
        GraphBuilder b = new GraphBuilder(g);
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch", "sequence"));
        Value h = b.gather(param(b, "wte", r, 0.5, vocab, 8), ids, 0);
        Value positions = b.range(b.scalarInt(0), b.gather(b.shape(ids), b.scalarInt(1), 0), b.scalarInt(1));
        h = b.add(h, b.gather(param(b, "wpe", r, 0.5, 8, 8), positions, 0));
        h = b.layerNorm(h, param(b, "ln.weight", r, 0.1, 8), param(b, "ln.bias", r, 0.1, 8), 1e-5f);
        h = b.gelu(b.matMul(h, param(b, "fc.weight", r, 0.4, 8, 16)), "tanh");
        b.output(b.matMul(h, param(b, "head.weight", r, 0.4, 16, vocab)), "logits");
        Model lm = CausalLmLoss.addTo(new Model(g, 17), "logits", true);
        List<String> params = List.of("wte", "wpe", "ln.weight", "ln.bias", "fc.weight", "head.weight");
        TrainGraphs graphs = TrainStepGraph.build(lm, CausalLmLoss.LOSS, params,
                OptimizerOptions.adamW().withWeightDecay(0.0, OptimizerOptions.DECAY_ALL));
        long[] window = new long[2 * 9];
        for (int i = 0; i < window.length; i++) {
            window[i] = r.nextInt(vocab);
        }
        CausalLmLoss.Batch data = CausalLmLoss.fromWindow(window, 2, 9);
        long[] mask = new long[16];
        java.util.Arrays.fill(mask, 1);
        mask[0] = 0; // a prompt position that is not scored
        Map<String, Ort.Feed> feeds = Map.of("input_ids", Ort.Feed.longs(data.inputIds(), 2, 8),
                CausalLmLoss.LABELS, Ort.Feed.longs(data.labels(), 2, 8),
                CausalLmLoss.LOSS_MASK, Ort.Feed.longs(mask, 2, 8));
        try (OptimizerTest.Runner run = new OptimizerTest.Runner(graphs)) {
            run.step(feeds, 1, 0.05f);
            double start = run.lastLoss;
            for (int t = 2; t <= 200; t++) {
                run.step(feeds, t, 0.05f);
            }
            assertTrue(run.lastLoss < 0.1 * start, "loss " + start + " -> " + run.lastLoss);
        }
    }

    @Test
    void causalLmLossIsMeanCrossEntropyOverCountedShiftedTokens() {
        int vocab = 5;
        Random r = new Random(8);
        Graph g = new Graph("logits");
        GraphBuilder b = new GraphBuilder(g);
        Value logits = b.input("logits", TensorType.symbolic(DataType.FLOAT, "batch", "sequence", (long) vocab));
        b.output(b.identity(logits), "out");
        Model m = CausalLmLoss.addTo(new Model(g, 17), "out", true);
        float[] z = new float[2 * 4 * vocab];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) r.nextGaussian();
        }
        long[] hfLabels = {3, 1, 4, 0, 2, 2, 1, 3};
        long[] labels = CausalLmLoss.shiftLabels(hfLabels, 2, 4);
        assertEquals(List.of(1L, 4L, 0L, -100L, 2L, 1L, 3L, -100L), java.util.Arrays.stream(labels).boxed().toList());
        labels[1] = CausalLmLoss.IGNORE_INDEX;
        long[] mask = {1, 1, 1, 1, 1, 0, 1, 1};
        double sum = 0;
        int count = 0;
        for (int p = 0; p < 8; p++) {
            if (labels[p] == -100 || mask[p] == 0) {
                continue;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, z[p * vocab + v]);
            }
            double lse = 0;
            for (int v = 0; v < vocab; v++) {
                lse += Math.exp(z[p * vocab + v] - max);
            }
            sum += max + Math.log(lse) - z[p * vocab + (int) labels[p]];
            count++;
        }
        assertEquals(4, count);
        try (Ort ort = new Ort(m)) {
            double loss = ort.run(Map.of("logits", Ort.Feed.floats(z, 2, 4, vocab), CausalLmLoss.LABELS,
                    Ort.Feed.longs(labels, 2, 4), CausalLmLoss.LOSS_MASK, Ort.Feed.longs(mask, 2, 4)),
                    CausalLmLoss.LOSS).get(CausalLmLoss.LOSS)[0];
            assertEquals(sum / count, loss, 1e-5);
        }
        CausalLmLoss.Batch w = CausalLmLoss.fromWindow(new long[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertEquals(List.of(1L, 2L, 4L, 5L), java.util.Arrays.stream(w.inputIds()).boxed().toList());
        assertEquals(List.of(2L, 3L, 5L, 6L), java.util.Arrays.stream(w.labels()).boxed().toList());
        assertTrue(new ArrayList<>(m.graph().inputs().stream().map(Value::name).toList()).contains("labels"));
    }
}
