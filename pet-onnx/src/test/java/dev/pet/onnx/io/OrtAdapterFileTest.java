package dev.pet.onnx.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoraAdapter;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Our .onnx_adapter files load in ONNX Runtime's OrtLoraAdapter and override the named inputs when active. */
class OrtAdapterFileTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    @TempDir
    Path dir;

    @Test
    void onnxRuntimeAppliesTheAdapterParameters() throws Exception {
        Graph g = new Graph("g");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 1, 2));
        // Initializers that are also graph inputs: defaults that an active adapter overrides.
        Value w = b.initializer("lora.w", Tensor.ofFloats(new float[] {1, 0, 0, 1}, 2, 2));
        Value s = b.initializer("lora.s", Tensor.ofFloats(new float[] {0, 0}, 2));
        g.addInput("lora.w", w.type());
        g.addInput("lora.s", s.type());
        b.output(b.add(b.matMul(x, w), s), "y");
        Path model = dir.resolve("m.onnx");
        OnnxFiles.write(new Model(g, 17), model);

        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("lora.w", Tensor.ofFloats(new float[] {2, 3, 4, 5}, 2, 2));
        params.put("lora.s", Tensor.ofFloats(new float[] {0.5f, -1}, 2));
        Path adapter = dir.resolve("a.onnx_adapter");
        OrtAdapterFile.write(adapter, params, 1, 1);

        try (OrtSession session = ENV.createSession(model.toString(), new OrtSession.SessionOptions());
                OnnxTensor xt = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(new float[] {1, 2}), new long[] {1, 2});
                OrtLoraAdapter lora = OrtLoraAdapter.create(adapter.toString());
                OrtSession.RunOptions withAdapter = new OrtSession.RunOptions()) {
            try (OrtSession.Result r = session.run(Map.of("x", xt))) {
                assertArrayEquals(new float[] {1, 2}, ((OnnxTensor) r.get(0)).getFloatBuffer().array(), "defaults");
            }
            withAdapter.addActiveLoraAdapter(lora);
            try (OrtSession.Result r = session.run(Map.of("x", xt), withAdapter)) {
                // [1, 2] @ [[2, 3], [4, 5]] + [0.5, -1] = [10.5, 12]
                assertArrayEquals(new float[] {10.5f, 12f}, ((OnnxTensor) r.get(0)).getFloatBuffer().array());
            }
        }
    }
}
