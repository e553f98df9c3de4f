package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A toy "train step" graph, {@code x' = x*0.5 + f*lr}, {@code m' = m + x}, {@code loss = sum(x')}, with a frozen
 * weight {@code w} mixed into the loss, run for several steps against the same recurrence in plain Java.
 */
class StatefulSessionTest {
    private static final int N = 300;
    private static OrtEngine engine;

    @BeforeAll
    static void start() {
        engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1));
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static float[] frozen() {
        float[] w = new float[N];
        for (int i = 0; i < N; i++) {
            w[i] = (i % 7) * 0.25f - 0.5f;
        }
        return w;
    }

    /** x' = x*0.5 + f*lr; m' = m + x; loss = sum(x' * w) with w a 1.2 kB frozen initializer. */
    static Model stepModel() {
        Graph g = new Graph("toy_step");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, N));
        Value m = b.input("m", TensorType.of(DataType.FLOAT, N));
        Value f = b.input("f", TensorType.of(DataType.FLOAT, N));
        Value lr = b.input("lr", TensorType.of(DataType.FLOAT));
        Value w = b.initializer("w", Tensor.ofFloats(frozen(), N));
        Value xNew = b.add(b.mul(x, b.constant(0.5f)), b.mul(f, lr));
        b.output(xNew, "x_new");
        b.output(b.add(m, x), "m_new");
        b.output(b.reduceSum(b.mul(xNew, w), new long[] {0}, false), "loss");
        return new Model(g, GraphBuilder.DEFAULT_OPSET);
    }

    static StateSpec spec() {
        return StateSpec.of(List.of("f", "lr"), "x", "x_new", "m", "m_new");
    }

    static float[] feedFor(int step) {
        float[] f = new float[N];
        for (int i = 0; i < N; i++) {
            f[i] = (float) Math.sin(step * 0.7 + i * 0.01);
        }
        return f;
    }

    static Map<String, Tensor> initial() {
        float[] x0 = new float[N];
        for (int i = 0; i < N; i++) {
            x0[i] = i * 0.01f;
        }
        return Map.of("x", Tensor.ofFloats(x0, N), "m", Tensor.ofFloats(new float[N], N));
    }

    @Test
    void stepsMatchPlainJavaRecurrenceAndReuseTheSameBuffers() {
        float[] w = frozen();
        float[] x = initial().get("x").toFloatArray();
        float[] m = new float[N];
        try (StatefulSession s = engine.compileStateful(stepModel(), spec(), initial())) {
            assertEquals(List.of("x", "m"), s.stateNames());
            assertEquals(java.util.Set.of("loss"), s.resultOutputs());
            OnnxTensor a = s.currentStateTensor("x");
            OnnxTensor feedTensor = null;
            int steps = 7;
            for (int step = 0; step < steps; step++) {
                float lr = 0.1f * (step + 1);
                float[] f = feedFor(step);
                StepOutputs out = s.feed("f", Tensor.ofFloats(f, N)).feedScalar("lr", lr).step();
                if (feedTensor == null) {
                    feedTensor = s.feedTensor("f");
                }
                // Reference, in float32 like ORT; each op rounds once, so results agree to float rounding.
                double loss = 0;
                for (int i = 0; i < N; i++) {
                    float xn = x[i] * 0.5f + f[i] * lr;
                    m[i] = m[i] + x[i];
                    x[i] = xn;
                    loss += xn * w[i];
                }
                assertEquals(loss, out.scalar("loss"), 1e-4 * (1 + Math.abs(loss)), "loss at step " + step);
                assertArrayEquals(x, s.state("x").toFloatArray(), 1e-6f, "x after step " + step);
                assertArrayEquals(m, s.state("m").toFloatArray(), 1e-5f, "m after step " + step);
                // Double buffering: A after even step counts, B after odd ones; never a new tensor.
                if ((step + 1) % 2 == 0) {
                    assertSame(a, s.currentStateTensor("x"), "state tensor A reused after step " + step);
                } else {
                    assertNotSame(a, s.currentStateTensor("x"), "state written into buffer B at step " + step);
                }
                assertSame(feedTensor, s.feedTensor("f"), "feed tensor reused at step " + step);
            }
            assertEquals(steps, s.steps());
        }
    }

    @Test
    void resumingFromCopiedStateReplaysBitForBit() {
        int steps = 6;
        int split = 3;
        float[][] straight = new float[steps][];
        Map<String, Tensor> checkpoint = null;
        try (StatefulSession s = engine.compileStateful(stepModel(), spec(), initial())) {
            for (int step = 0; step < steps; step++) {
                if (step == split) {
                    checkpoint = s.state();
                }
                s.feed("f", Tensor.ofFloats(feedFor(step), N)).feedScalar("lr", 0.05 * step).step();
                straight[step] = s.state("x").toFloatArray();
            }
        }
        try (StatefulSession resumed = engine.compileStateful(stepModel(), spec(), initial())) {
            for (Map.Entry<String, Tensor> e : checkpoint.entrySet()) {
                resumed.setState(e.getKey(), e.getValue());
            }
            for (int step = split; step < steps; step++) {
                resumed.feed("f", Tensor.ofFloats(feedFor(step), N)).feedScalar("lr", 0.05 * step).step();
                assertArrayEquals(straight[step], resumed.state("x").toFloatArray(), 0f, "step " + step);
            }
        }
    }

    @Test
    void stateOutputsNeverAliasTheInputsTheyAreComputedFrom() {
        // x' depends on every x; if the output buffer were the input buffer, a blocked kernel could read
        // already-updated values. After one step, the old buffer still holds the old value.
        try (StatefulSession s = engine.compileStateful(stepModel(), spec(), initial())) {
            OnnxTensor before = s.currentStateTensor("x");
            s.feed("f", Tensor.ofFloats(new float[N], N)).feedScalar("lr", 0).step();
            float[] old = initial().get("x").toFloatArray();
            float[] inOld = before.getFloatBuffer().array();
            assertArrayEquals(old, inOld, 0f);
            float[] halved = s.state("x").toFloatArray();
            for (int i = 0; i < N; i++) {
                assertEquals(old[i] * 0.5f, halved[i], 0f);
            }
        }
    }

    @Test
    void feedOfANewShapeGetsANewBufferAndTheSameShapeKeepsIt() {
        Graph g = new Graph("dyn");
        GraphBuilder b = new GraphBuilder(g);
        Value acc = b.input("acc", TensorType.of(DataType.INT64));
        Value ids = b.input("ids", TensorType.symbolic(DataType.INT64, "n"));
        b.output(b.add(acc, b.reduceSum(ids, new long[] {0}, false)), "acc_new");
        Model model = new Model(g, GraphBuilder.DEFAULT_OPSET);
        try (StatefulSession s = engine.compileStateful(model, StateSpec.of(List.of("ids"), "acc", "acc_new"),
                Map.of("acc", Tensor.ofLongs(new long[] {0})))) {
            s.feedLongs("ids", new long[] {1, 2, 3}, 3).step();
            OnnxTensor first = s.feedTensor("ids");
            s.feedLongs("ids", new long[] {4, 5, 6}, 3).step();
            assertSame(first, s.feedTensor("ids"));
            s.feedLongs("ids", new long[] {10, 20}, 2).step();
            assertNotSame(first, s.feedTensor("ids"));
            assertEquals(1 + 2 + 3 + 4 + 5 + 6 + 10 + 20, s.state("acc").toLongArray()[0]);
        }
    }

    @Test
    void reportsMissingStateUnsetFeedsAndWrongTypes() {
        Model model = stepModel();
        EngineException missing = assertThrows(EngineException.class, () -> engine.compileStateful(model, spec(),
                Map.of("x", initial().get("x"))));
        assertTrue(missing.getMessage().contains("no initial value for state input 'm'"), missing.getMessage());

        EngineException uncovered = assertThrows(EngineException.class, () -> engine.compileStateful(model,
                StateSpec.of(List.of("f"), "x", "x_new", "m", "m_new"), initial()));
        assertTrue(uncovered.getMessage().contains("[lr]"), uncovered.getMessage());

        try (StatefulSession s = engine.compileStateful(model, spec(), initial())) {
            s.feed("f", Tensor.ofFloats(new float[N], N));
            EngineException unset = assertThrows(EngineException.class, s::step);
            assertTrue(unset.getMessage().contains("feed 'lr' was never set"), unset.getMessage());
            EngineException type = assertThrows(EngineException.class,
                    () -> s.feed("f", Tensor.ofDoubles(new double[N], N)));
            assertTrue(type.getMessage().contains("expects FLOAT, found DOUBLE"), type.getMessage());
            EngineException shape = assertThrows(EngineException.class,
                    () -> s.setState("x", Tensor.ofFloats(new float[3], 3)));
            assertTrue(shape.getMessage().contains("state 'x' is FLOAT[300]"), shape.getMessage());
            EngineException notFeed = assertThrows(EngineException.class, () -> s.feedScalar("x", 1));
            assertTrue(notFeed.getMessage().contains("use setState"), notFeed.getMessage());
        }
    }

    /**
     * Planned step memory (the default: memory pattern, arena released after the first run at new shapes) computes
     * what unplanned steps compute, with the arena on or off, as the feed's batch size changes between steps; and
     * what a plain Java recurrence computes.
     */
    @Test
    void plannedStepMemoryChangesNoResult() {
        // w' = w - 0.1 * sum over rows of (x * w), loss = sum(x * w); x is [batch, 4] with batch varying
        Graph g = new Graph("varying_step");
        GraphBuilder b = new GraphBuilder(g);
        Value w = b.input("w", TensorType.of(DataType.FLOAT, 4));
        Value x = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", 4));
        Value xw = b.mul(x, w);
        b.output(b.sub(w, b.mul(b.reduceSum(xw, new long[] {0}, false), b.constant(0.1f))), "w_new");
        b.output(b.reduceSum(xw, new long[0], false), "loss");
        Model model = new Model(g, GraphBuilder.DEFAULT_OPSET);
        StateSpec spec = StateSpec.of(List.of("x"), "w", "w_new");
        Map<String, Tensor> init = Map.of("w", Tensor.ofFloats(new float[] {1, -2, 0.5f, 3}, 4));
        int[] batches = {3, 3, 5, 5, 2, 3};
        EngineOptions base = EngineOptions.defaults().withIntraOpThreads(1);
        assertTrue(base.plannedStepMemory());
        List<EngineOptions> variants = List.of(base, base.withPlannedStepMemory(false), base.withCpuArena(false));
        float[][] states = new float[variants.size()][];
        for (int v = 0; v < variants.size(); v++) {
            try (OrtEngine e = new OrtEngine(variants.get(v)); StatefulSession s = e.compileStateful(model, spec, init)) {
                for (int step = 0; step < batches.length; step++) {
                    s.feed("x", Tensor.ofFloats(rows(step, batches[step]), batches[step], 4)).step();
                }
                states[v] = s.state("w").toFloatArray();
            }
        }
        float[] ref = {1, -2, 0.5f, 3};
        for (int step = 0; step < batches.length; step++) {
            float[] xs = rows(step, batches[step]);
            float[] sum = new float[4];
            for (int r = 0; r < batches[step]; r++) {
                for (int c = 0; c < 4; c++) {
                    sum[c] += xs[r * 4 + c] * ref[c];
                }
            }
            for (int c = 0; c < 4; c++) {
                ref[c] -= sum[c] * 0.1f;
            }
        }
        assertArrayEquals(ref, states[0], 1e-5f);
        assertArrayEquals(states[0], states[1], 0f);
        assertArrayEquals(states[0], states[2], 0f);
    }

    private static float[] rows(int step, int batch) {
        float[] x = new float[batch * 4];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.cos(step * 1.3 + i * 0.37);
        }
        return x;
    }
}
