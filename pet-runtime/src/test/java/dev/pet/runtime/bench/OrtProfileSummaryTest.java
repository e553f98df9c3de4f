package dev.pet.runtime.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OrtProfileSummaryTest {
    @TempDir
    Path dir;

    @Test
    void sumsKernelTimeByOpPhaseAndFoldedModulePerRun() throws IOException {
        Path f = dir.resolve("p.json");
        // three runs: the first (warm-up, ts 0-999) is left out, its 500 ms Mul too
        Files.writeString(f, """
                [{"cat":"Session","name":"model_run","ts":0,"dur":999},
                 {"cat":"Node","name":"/model/layers.0/mlp/Mul_kernel_time","ts":10,"dur":500000,"args":{"op_name":"Mul"}},
                 {"cat":"Session","name":"model_run","ts":1000,"dur":9000},
                 {"cat":"Session","name":"model_run","ts":10000,"dur":9000},
                 {"cat":"Node","name":"/model/layers.0/mlp/Mul_kernel_time","ts":1100,"dur":1000,"args":{"op_name":"Mul"}},
                 {"cat":"Node","name":"/model/layers.0/mlp/Mul_kernel_time","ts":10100,"dur":1000,"args":{"op_name":"Mul"}},
                 {"cat":"Node","name":"grad//model/layers.1/mlp/Mul_1_kernel_time","ts":1200,"dur":3000,"args":{"op_name":"Mul"}},
                 {"cat":"Node","name":"grad//model/layers.1/mlp/Mul_1_fence_before","ts":1300,"dur":500,"args":{"op_name":"Mul"}},
                 {"cat":"Node","name":"optim/Sqrt_kernel_time","ts":10200,"dur":2000,"args":{"op_name":"Sqrt"}}]
                """);
        OrtProfileSummary s = OrtProfileSummary.read(f);
        assertEquals(2, s.runs());
        assertEquals(2.5, s.byOp().get("Mul").msPerRun(), 1e-12);
        assertEquals(2, s.byOp().get("Mul").nodes());
        assertEquals(1.0, s.byPhase().get("forward").msPerRun(), 1e-12);
        assertEquals(1.5, s.byPhase().get("backward").msPerRun(), 1e-12);
        assertEquals(1.0, s.byPhase().get("optimizer").msPerRun(), 1e-12);
        assertEquals(2.5, s.byModule().get("/model/layers.N/mlp").msPerRun(), 1e-12);
        assertEquals(3.5, s.totalMsPerRun(), 1e-12);
        assertTrue(s.format(5).contains("/model/layers.N/mlp"));
    }

    @Test
    void refusesAFileThatIsNotAProfile() throws IOException {
        Path f = dir.resolve("x.json");
        Files.writeString(f, "{\"a\": 1}");
        assertThrows(IOException.class, () -> OrtProfileSummary.read(f));
    }

    @Test
    void engineWritesOneProfilePerSessionWhenAsked() throws Exception {
        Graph g = new Graph("g");
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, 2, 3));
        b.output(b.mul(b.sigmoid(x), x), "y");
        Path out = dir.resolve("profiles");
        try (OrtEngine engine = new OrtEngine(EngineOptions.defaults().withProfileDirectory(out));
                var compiled = engine.compile(new Model(g, 17))) {
            for (int i = 0; i < 3; i++) {
                compiled.run(java.util.Map.of("x", dev.pet.onnx.tensor.Tensor.ofFloats(new float[6], 2, 3)));
            }
        }
        List<Path> files;
        try (var l = Files.list(out)) {
            files = l.toList();
        }
        assertEquals(1, files.size(), files.toString());
        OrtProfileSummary s = OrtProfileSummary.read(files.get(0));
        assertEquals(2, s.runs()); // of 3, the warm-up left out
        // ORT fuses x·sigmoid(x) into one kernel of its own (QuickGelu): whatever ran, it was timed
        assertEquals(1, s.byPhase().size(), s.byPhase().toString());
        assertTrue(s.totalMsPerRun() > 0, s.byOp().toString());
    }
}
