package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The split step (gradients graph, then apply graph) against the fused step on one process: the same AdamW update
 * with clipping and accumulation, step after step. The model is loss = Σ (w·x − b − y)² with trainables w [3] and
 * b [1].
 */
class SplitTrainStepTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();
    private static final float[][] X = {{1.0f, 2.0f, -1.0f}, {0.5f, -0.3f, 0.8f}, {-1.2f, 0.7f, 0.4f}};
    private static final float[] Y = {0.3f, -0.2f, 0.9f};

    private static Model forward() {
        Graph g = new Graph("quadratic");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 3));
        Value y = b.input("y", TensorType.of(DataType.FLOAT, 3));
        Value w = b.initializer("w", Tensor.ofFloats(new float[] {0.5f, -1.0f, 2.0f}, 3));
        Value bias = b.initializer("b", Tensor.ofFloats(new float[] {0.25f}, 1));
        Value d = b.sub(b.sub(b.mul(w, x), bias), y);
        b.output(b.reduceSum(b.mul(d, d), new long[0], false), "loss");
        return new Model(g, GraphBuilder.DEFAULT_OPSET);
    }

    private static final OptimizerSpec SPEC = OptimizerSpec.adamW().withMaxGradNorm(0.5).withAccumulation(2);

    @Test
    void splitStepMatchesTheFusedStepBitForBit() throws Exception {
        TrainStepModel fused = TrainStepBuilder.build(forward(), "loss", List.of("w", "b"), SPEC);
        SplitTrainStep split = TrainStepBuilder.buildSplit(forward(), "loss", List.of("w", "b"), SPEC,
                Recompute.ACTIVATIONS);
        assertEquals(fused.initialState().keySet(), split.apply().initialState().keySet(),
                "the apply graph's state is named as the fused step's, so checkpoints are interchangeable");
        assertEquals(List.of("x", "y"), split.feeds());

        Map<String, float[]> fusedState = initial(fused);
        Map<String, float[]> splitState = initial(split.apply());
        try (OrtSession f = session(fused.model()); OrtSession grads = session(split.gradients());
                OrtSession apply = session(split.apply().model())) {
            for (int i = 0; i < 8; i++) {
                Map<String, Object> feeds = new HashMap<>();
                feeds.put("x", X[i % 3]);
                feeds.put("y", Y);
                feeds.put(TrainStepBuilder.LR, 0.05f);
                feeds.put(TrainStepBuilder.STEP, (float) (i / 2 + 1));
                feeds.put(TrainStepBuilder.APPLY, i % 2 == 1);
                Map<String, Object> fusedFeeds = new HashMap<>(feeds);
                fusedFeeds.putAll(fusedState);
                Map<String, float[]> fusedOut = run(f, fused, fusedFeeds, fusedState);

                Map<String, Object> gradFeeds = new HashMap<>();
                gradFeeds.put("x", X[i % 3]);
                gradFeeds.put("y", Y);
                gradFeeds.put("w", splitState.get("w"));
                gradFeeds.put("b", splitState.get("b"));
                Map<String, float[]> g = run(grads, null, gradFeeds, null);
                Map<String, Object> applyFeeds = new HashMap<>(feeds);
                applyFeeds.remove("x");
                applyFeeds.remove("y");
                applyFeeds.put(TrainStepBuilder.gradient("w"), g.get(TrainStepBuilder.gradient("w")));
                applyFeeds.put(TrainStepBuilder.gradient("b"), g.get(TrainStepBuilder.gradient("b")));
                applyFeeds.putAll(splitState);
                Map<String, float[]> splitOut = run(apply, split.apply(), applyFeeds, splitState);

                assertArrayEquals(fusedOut.get("loss"), g.get("loss"), "loss at micro-step " + i);
                assertArrayEquals(fusedOut.get(TrainStepBuilder.GRAD_NORM), splitOut.get(TrainStepBuilder.GRAD_NORM),
                        "gradient norm at micro-step " + i);
                for (String name : fusedState.keySet()) {
                    assertArrayEquals(fusedState.get(name), splitState.get(name), name + " after micro-step " + i);
                }
            }
            assertTrue(fusedOut(fusedState), "the run clipped and moved the weights");
        }
    }

    private static boolean fusedOut(Map<String, float[]> state) {
        return state.get("w")[0] != 0.5f;
    }

    private static Map<String, float[]> initial(TrainStepModel m) {
        Map<String, float[]> s = new LinkedHashMap<>();
        m.initialState().forEach((k, v) -> s.put(k, v.toFloatArray()));
        return s;
    }

    private static OrtSession session(Model m) throws Exception {
        return ENV.createSession(OnnxSerializer.toBytes(m), new OrtSession.SessionOptions());
    }

    /** Runs a session; with a step model, writes the next state back into {@code state}. Returns every float output. */
    private static Map<String, float[]> run(OrtSession s, TrainStepModel m, Map<String, Object> feeds,
            Map<String, float[]> state) throws Exception {
        Map<String, OnnxTensor> in = new HashMap<>();
        try {
            for (Map.Entry<String, Object> e : feeds.entrySet()) {
                Object v = e.getValue();
                in.put(e.getKey(), v instanceof float[] a
                        ? OnnxTensor.createTensor(ENV, FloatBuffer.wrap(a), shapeOf(s, e.getKey(), a.length))
                        : OnnxTensor.createTensor(ENV, v));
            }
            Map<String, float[]> out = new HashMap<>();
            try (OrtSession.Result r = s.run(in)) {
                for (Map.Entry<String, ai.onnxruntime.OnnxValue> e : r) {
                    if (e.getValue() instanceof OnnxTensor t
                            && t.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT) {
                        FloatBuffer fb = t.getFloatBuffer();
                        float[] a = new float[fb.remaining()];
                        fb.get(a);
                        out.put(e.getKey(), a);
                    }
                }
            }
            if (m != null) {
                m.stateBindings().forEach((input, output) -> state.put(input, out.get(output)));
            }
            return out;
        } finally {
            in.values().forEach(OnnxTensor::close);
        }
    }

    private static long[] shapeOf(OrtSession s, String input, int length) throws Exception {
        long[] shape = ((ai.onnxruntime.TensorInfo) s.getInputInfo().get(input).getInfo()).getShape();
        return shape.length == 0 ? new long[0] : new long[] {length};
    }
}
