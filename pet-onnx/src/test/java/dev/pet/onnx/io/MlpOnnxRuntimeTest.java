package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** A graph built with our builder and serialiser runs in ONNX Runtime and computes what plain Java computes. */
class MlpOnnxRuntimeTest {
    private static final int BATCH = 3;
    private static final int IN = 5;
    private static final int HIDDEN = 7;
    private static final int OUT = 4;

    @Test
    void twoLayerMlpWithLayerNormAndSoftmaxMatchesPlainJava() throws Exception {
        Random r = new Random(11);
        float[] w1 = random(r, IN * HIDDEN);
        float[] b1 = random(r, HIDDEN);
        float[] gamma = random(r, HIDDEN);
        float[] beta = random(r, HIDDEN);
        float[] w2 = random(r, HIDDEN * OUT);
        float[] b2 = random(r, OUT);
        float[] x = random(r, BATCH * IN);

        Graph g = new Graph("mlp");
        GraphBuilder b = new GraphBuilder(g);
        Value in = b.input("x", TensorType.symbolic(DataType.FLOAT, "batch", (long) IN));
        Value h = b.add(b.matMul(in, b.initializer("w1", Tensor.ofFloats(w1, IN, HIDDEN))),
                b.initializer("b1", Tensor.ofFloats(b1, HIDDEN)));
        h = b.layerNorm(h, b.initializer("gamma", Tensor.ofFloats(gamma, HIDDEN)),
                b.initializer("beta", Tensor.ofFloats(beta, HIDDEN)), 1e-5f);
        h = b.gelu(h, "tanh");
        Value logits = b.add(b.matMul(h, b.initializer("w2", Tensor.ofFloats(w2, HIDDEN, OUT))),
                b.initializer("b2", Tensor.ofFloats(b2, OUT)));
        b.output(b.softmax(logits, -1), "probs");
        byte[] bytes = OnnxSerializer.toBytes(new Model(g, GraphBuilder.DEFAULT_OPSET));

        float[] got;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(bytes, new OrtSession.SessionOptions());
                OnnxTensor xt = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[] {BATCH, IN});
                OrtSession.Result res = s.run(Map.of("x", xt))) {
            got = ((OnnxTensor) res.get("probs").get()).getFloatBuffer().array();
        }

        double[] expected = referenceMlp(x, w1, b1, gamma, beta, w2, b2);
        // float32 through two small matmuls, a normalisation and exp: a few ulps of values near 0.1-1.
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], got[i], 1e-5, "probs[" + i + "]");
        }
    }

    private static double[] referenceMlp(float[] x, float[] w1, float[] b1, float[] gamma, float[] beta,
            float[] w2, float[] b2) {
        double[] out = new double[BATCH * OUT];
        for (int n = 0; n < BATCH; n++) {
            double[] h = new double[HIDDEN];
            for (int j = 0; j < HIDDEN; j++) {
                double s = b1[j];
                for (int i = 0; i < IN; i++) {
                    s += x[n * IN + i] * (double) w1[i * HIDDEN + j];
                }
                h[j] = s;
            }
            double mean = 0;
            for (double v : h) {
                mean += v / HIDDEN;
            }
            double var = 0;
            for (double v : h) {
                var += (v - mean) * (v - mean) / HIDDEN;
            }
            for (int j = 0; j < HIDDEN; j++) {
                double ln = (h[j] - mean) / Math.sqrt(var + 1e-5) * gamma[j] + beta[j];
                h[j] = 0.5 * ln * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (ln + 0.044715 * ln * ln * ln)));
            }
            double[] logits = new double[OUT];
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < OUT; k++) {
                double s = b2[k];
                for (int j = 0; j < HIDDEN; j++) {
                    s += h[j] * w2[j * OUT + k];
                }
                logits[k] = s;
                max = Math.max(max, s);
            }
            double z = 0;
            for (int k = 0; k < OUT; k++) {
                z += Math.exp(logits[k] - max);
            }
            for (int k = 0; k < OUT; k++) {
                out[n * OUT + k] = Math.exp(logits[k] - max) / z;
            }
        }
        return out;
    }

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }
}
