package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.onnxruntime.OrtProvider;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DeviceAndOptionsTest {
    @Test
    void parsesCpuAndCudaDevices() {
        assertEquals(Device.CPU, Device.parse("cpu"));
        assertEquals(Device.CPU, Device.parse(" CPU "));
        assertEquals(Device.cuda(0), Device.parse("cuda"));
        assertEquals(Device.cuda(3), Device.parse("cuda:3"));
        assertEquals("cuda:3", Device.parse("cuda:3").toString());
        assertEquals("cpu", Device.CPU.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu", "", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "cpu:0", "cuda:123456"})
    void rejectsBadDevicesNamingTheValue(String text) {
        EngineException e = assertThrows(EngineException.class, () -> Device.parse(text));
        assertTrue(e.getMessage().contains("'" + text + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("cuda"), e.getMessage());
    }

    @Test
    void rejectsBadOptions() {
        EngineException threads = assertThrows(EngineException.class,
                () -> EngineOptions.defaults().withIntraOpThreads(0));
        assertTrue(threads.getMessage().contains("at least 1, found 0"), threads.getMessage());
        assertEquals(Runtime.getRuntime().availableProcessors(), EngineOptions.defaults().intraOpThreads());
    }

    @Test
    void cudaWithoutTheGpuRuntimeFailsWithAClearMessage() {
        assumeFalse(OrtEngine.availableProviders().contains(OrtProvider.CUDA),
                "this ONNX Runtime library has the CUDA provider");
        EngineException e = assertThrows(EngineException.class,
                () -> new OrtEngine(EngineOptions.defaults().withDevice(Device.parse("cuda:1"))));
        String m = e.getMessage();
        assertTrue(m.startsWith("device 'cuda:1' needs ONNX Runtime's CUDA execution provider"), m);
        assertTrue(m.contains("onnxruntime_gpu") && m.contains("CUDA 12") && m.contains("cuDNN 9"), m);
        assertTrue(m.contains("[CPU"), m);
    }

    private static long threadCount() throws IOException {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            return tasks.count();
        }
    }

    @Test
    void intraOpThreadSettingIsHonoured() throws IOException {
        Random r = new Random(2);
        float[] a = new float[64 * 64];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        Graph g = new Graph("mm");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 64, 64));
        b.output(b.matMul(x, b.initializer("w", Tensor.ofFloats(a, 64, 64))), "y");
        Model model = new Model(g, GraphBuilder.DEFAULT_OPSET);
        Map<String, Tensor> feeds = Map.of("x", Tensor.ofFloats(a, 64, 64));
        float[] one;
        boolean procfs = Files.isDirectory(Path.of("/proc/self/task"));
        try (OrtEngine e1 = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1));
                CompiledGraph g1 = e1.compile(model)) {
            one = g1.run(feeds).get("y").toFloatArray();
        }
        try (OrtEngine e4 = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(4))) {
            long before = threadCount();
            try (CompiledGraph g4 = e4.compile(model)) {
                // ORT starts intra-op pool threads (n - 1, the caller is the n-th) per session.
                if (procfs) {
                    assertTrue(threadCount() - before >= 3, "expected >= 3 new pool threads, found "
                            + (threadCount() - before));
                }
                assertArrayEquals(one, g4.run(feeds).get("y").toFloatArray(), 1e-5f);
            }
        }
    }
}
