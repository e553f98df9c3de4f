package dev.pet.engine.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.engine.CompiledGraph;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resident memory of a session whose 256 MiB frozen weight lives in a memory-mapped file, supplied as an external
 * initializer (the engine's way) versus embedded in the protobuf. Linux only. Runs on request with
 * {@code -Dtest=ExternalInitializerRssBenchmark -Dpet.bench=true}; the external case runs first so that the
 * embedded case's freed memory does not hide it.
 */
class ExternalInitializerRssBenchmark {
    private static final int ROWS = 65536;
    private static final int COLS = 1024;

    private static long[] rss() throws IOException {
        long anon = 0;
        long file = 0;
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("RssAnon:")) {
                anon = Long.parseLong(l.replaceAll("\\D", "")) / 1024;
            } else if (l.startsWith("RssFile:")) {
                file = Long.parseLong(l.replaceAll("\\D", "")) / 1024;
            }
        }
        return new long[] {anon, file};
    }

    @Test
    @EnabledIfSystemProperty(named = "pet.bench", matches = "true")
    void externalVersusEmbedded(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("w.bin");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (long i = 0; i < (long) ROWS * COLS;) {
                b.clear();
                while (b.hasRemaining()) {
                    b.putFloat(i++ % 1000);
                }
                b.flip();
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
        }
        Tensor w = new Tensor(DataType.FLOAT, new long[] {ROWS, COLS}, new FileData(file, 0, 4L * ROWS * COLS));
        Graph g = new Graph("embedding");
        GraphBuilder b = new GraphBuilder(g);
        Value idx = b.input("idx", TensorType.of(DataType.INT64, 2));
        b.output(b.gather(b.initializer("W", w), idx, 0), "y");
        Model model = new Model(g, GraphBuilder.DEFAULT_OPSET);
        StringBuilder report = new StringBuilder("256 MiB weight in a mapped file, Gather graph (MiB):\n");
        for (long threshold : new long[] {1024, Long.MAX_VALUE}) {
            System.gc();
            long[] before = rss();
            try (OrtEngine engine = new OrtEngine(EngineOptions.defaults().withExternalThresholdBytes(threshold));
                    CompiledGraph cg = engine.compile(model)) {
                long[] created = rss();
                Tensor y = cg.run(Map.of("idx", Tensor.ofLongs(new long[] {3, ROWS - 1}, 2))).get("y");
                assertEquals((3L * COLS) % 1000, (long) y.toFloatArray()[0]);
                long[] ran = rss();
                report.append(String.format("%-9s protobuf %9d B | anon +%d after session, +%d after run | "
                        + "file-backed +%d%n", threshold == 1024 ? "external" : "embedded", cg.serializedBytes(),
                        created[0] - before[0], ran[0] - before[0], ran[1] - before[1]));
            }
        }
        System.out.print(report);
    }
}
