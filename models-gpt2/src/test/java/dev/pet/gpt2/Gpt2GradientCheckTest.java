package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The whole GPT-2 training graph differentiated by our autodiff: the gradient of the causal-LM loss with respect to
 * every parameter (a full fine-tune) matches central differences, in float64, on a 2-layer model with non-trivial
 * weights. Coordinates are sampled (six per tensor, spread over the tensor) to keep the test fast; every tensor is
 * covered. Tolerance: |analytic − numeric| ≤ 1e-7 + 1e-5·|numeric| (truncation ≈ eps² = 1e-12, rounding ≈ 1e-16/eps).
 */
class Gpt2GradientCheckTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();
    private static final double EPS = 1e-6;

    @Test
    void everyParameterGradientMatchesCentralDifferences() throws Exception {
        Gpt2Config config = Gpt2Config.of(97, 16, 16, 2, 2);
        Gpt2Weights weights = TestModels.nonTrivial(config, 3);
        Gpt2Graph built = Gpt2Graph.build(weights, CausalLmGraphOptions.training().withDataType(DataType.DOUBLE));
        Model model = built.model().copy();
        Graph g = model.graph();
        Value loss = g.requireValue(CausalLmLoss.append(g, Gpt2Graph.INPUT_IDS, Gpt2Graph.ATTENTION_MASK,
                Gpt2Graph.LOGITS, (int) model.opset()).name());
        Map<String, double[]> params = new LinkedHashMap<>();
        Map<String, long[]> shapes = new HashMap<>();
        List<Value> trainables = new ArrayList<>();
        for (String name : new ArrayList<>(g.initializers().keySet())) {
            Tensor t = g.initializer(name);
            if (t.dataType() != DataType.DOUBLE || t.elementCount() < 2) {
                continue; // constants of the graph itself (scalars, masks), not parameters
            }
            if (!name.startsWith("transformer.")) {
                continue;
            }
            params.put(name, t.toDoubleArray());
            shapes.put(name, t.shape());
            g.promoteInitializerToInput(name);
            trainables.add(g.requireValue(name));
        }
        assertEquals(Gpt2Weights.names(config).size(), params.size(), "every state-dict tensor is a parameter");
        Map<String, Value> grads = Autodiff.gradients(g, loss, trainables, (int) model.opset());
        for (Map.Entry<String, Value> e : grads.entrySet()) {
            g.addOutput(e.getValue());
        }

        Random r = new Random(9);
        int batch = 2;
        int window = 9;
        long[] tokens = new long[batch * window];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(97);
        }
        float[] mask = new float[batch * (window - 1)];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 5 == 2 ? 0f : 1f; // some targets excluded from the loss
        }
        try (OrtSession s = ENV.createSession(OnnxSerializer.toBytes(model), new OrtSession.SessionOptions())) {
            Map<String, double[]> analytic = new HashMap<>();
            try (Feeds f = new Feeds(params, shapes, tokens, batch, window, mask); OrtSession.Result res = s.run(f.map)) {
                for (Map.Entry<String, Value> e : grads.entrySet()) {
                    DoubleBuffer db = ((OnnxTensor) res.get(e.getValue().name()).get()).getDoubleBuffer();
                    double[] a = new double[db.remaining()];
                    db.get(a);
                    analytic.put(e.getKey(), a);
                }
            }
            for (Map.Entry<String, double[]> p : params.entrySet()) {
                double[] v = p.getValue();
                double[] a = analytic.get(p.getKey());
                for (int k = 0; k < 6; k++) {
                    int i = (int) ((long) k * 7919 % v.length);
                    double keep = v[i];
                    v[i] = keep + EPS;
                    double plus = loss(s, params, shapes, tokens, batch, window, mask);
                    v[i] = keep - EPS;
                    double minus = loss(s, params, shapes, tokens, batch, window, mask);
                    v[i] = keep;
                    double numeric = (plus - minus) / (2 * EPS);
                    assertEquals(numeric, a[i], 1e-7 + 1e-5 * Math.abs(numeric), p.getKey() + "[" + i + "]");
                }
            }
        }
    }

    private static double loss(OrtSession s, Map<String, double[]> params, Map<String, long[]> shapes, long[] tokens,
            int batch, int window, float[] mask) throws Exception {
        try (Feeds f = new Feeds(params, shapes, tokens, batch, window, mask);
                OrtSession.Result res = s.run(f.map, Set.of(CausalLmLoss.LOSS))) {
            return ((OnnxTensor) res.get(0)).getDoubleBuffer().get(0);
        }
    }

    private static final class Feeds implements AutoCloseable {
        final Map<String, OnnxTensor> map = new HashMap<>();

        Feeds(Map<String, double[]> params, Map<String, long[]> shapes, long[] tokens, int batch, int window,
                float[] mask) throws Exception {
            for (Map.Entry<String, double[]> p : params.entrySet()) {
                map.put(p.getKey(), OnnxTensor.createTensor(ENV, DoubleBuffer.wrap(p.getValue()),
                        shapes.get(p.getKey())));
            }
            map.put(CausalLmLoss.TOKENS, OnnxTensor.createTensor(ENV, LongBuffer.wrap(tokens),
                    new long[] {batch, window}));
            map.put(CausalLmLoss.LOSS_MASK, OnnxTensor.createTensor(ENV, FloatBuffer.wrap(mask),
                    new long[] {batch, window - 1}));
        }

        @Override
        public void close() {
            map.values().forEach(OnnxTensor::close);
        }
    }
}
