package dev.pet.gpt2.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/** Runs any GPT-2-shaped model through ONNX Runtime and returns every float output, flattened. */
final class Ort {
    private Ort() {
    }

    static Map<String, float[]> run(Model model, long[][] ids, long[][] mask) {
        return run(model, ids, mask, Map.of());
    }

    /** With extra float feeds (a key/value cache), each a flat array and its shape. */
    static Map<String, float[]> run(Model model, long[][] ids, long[][] mask, Map<String, Tensor> extra) {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions();
                OrtSession s = env.createSession(OnnxSerializer.toBytes(model), o);
                OnnxTensor idsT = OnnxTensor.createTensor(env, ids);
                OnnxTensor maskT = OnnxTensor.createTensor(env, mask)) {
            Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
            feeds.put("input_ids", idsT);
            if (s.getInputNames().contains("attention_mask")) {
                feeds.put("attention_mask", maskT);
            }
            for (Map.Entry<String, Tensor> e : extra.entrySet()) {
                feeds.put(e.getKey(), OnnxTensor.createTensor(env, FloatBuffer.wrap(e.getValue().toFloatArray()),
                        e.getValue().shape()));
            }
            Map<String, float[]> out = new LinkedHashMap<>();
            try (OrtSession.Result r = s.run(feeds)) {
                for (Map.Entry<String, OnnxValue> e : r) {
                    FloatBuffer fb = ((OnnxTensor) e.getValue()).getFloatBuffer();
                    float[] f = new float[fb.remaining()];
                    fb.get(f);
                    out.put(e.getKey(), f);
                }
            }
            return out;
        } catch (OrtException e) {
            throw new AssertionError("ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    static float[] logits(Model model, long[][] ids, long[][] mask) {
        return run(model, ids, mask).get("logits");
    }
}
