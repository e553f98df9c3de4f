package dev.pet.engine;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Measures ONNX Runtime's float32 MatMul throughput on this machine, the yardstick a train step is compared with.
 * Each shape is a graph {@code y = x @ W} with {@code W} a constant initializer (as frozen weights are in a train
 * step) and {@code y} written into a pinned output, so only the multiplication is timed.
 */
public final class MatMulPeak {
    /** One product {@code [m,k] x [k,n]}. */
    public record Shape(String label, int m, int k, int n) {
        public Shape {
            Objects.requireNonNull(label, "label");
            if (m < 1 || k < 1 || n < 1) {
                throw new EngineException("matmul shape must be positive, found " + m + "x" + k + "x" + n);
            }
        }

        public double flops() {
            return 2.0 * m * k * n;
        }
    }

    /** The timing of one shape: median seconds per product and the resulting GFLOP/s. */
    public record Result(Shape shape, int iterations, double medianSeconds) {
        public double gflops() {
            return shape.flops() / medianSeconds / 1e9;
        }

        @Override
        public String toString() {
            return String.format("%-34s %5d x %5d x %5d  %8.2f ms  %7.1f GFLOP/s  (%d runs)", shape.label(),
                    shape.m(), shape.k(), shape.n(), medianSeconds * 1e3, gflops(), iterations);
        }
    }

    /** A whole measurement: per shape, and the combined rate (total FLOPs over total median time). */
    public record Report(List<Result> results, int threads) {
        public Report {
            results = List.copyOf(results);
        }

        public double combinedGflops() {
            double flops = 0;
            double seconds = 0;
            for (Result r : results) {
                flops += r.shape().flops();
                seconds += r.medianSeconds();
            }
            return flops / seconds / 1e9;
        }
    }

    private MatMulPeak() {
    }

    /**
     * The products of a GPT-2-small train step at batch 4 x sequence 128 (rows = 512): the four block linears
     * forward, the activation gradient through {@code c_attn} ({@code dY @ W^T}) and the tied LM head.
     */
    public static List<Shape> gpt2SmallShapes(boolean withLmHead) {
        int rows = 4 * 128;
        List<Shape> s = new ArrayList<>(List.of(
                new Shape("attn.c_attn", rows, 768, 2304),
                new Shape("attn.c_proj", rows, 768, 768),
                new Shape("mlp.c_fc", rows, 768, 3072),
                new Shape("mlp.c_proj", rows, 3072, 768),
                new Shape("attn.c_attn activation gradient", rows, 2304, 768)));
        if (withLmHead) {
            s.add(new Shape("lm_head", rows, 768, 50257));
        }
        return s;
    }

    /** Times each shape for at least {@code minSeconds} (and 3 runs) after 2 warm-up runs. */
    public static Report measure(OrtEngine engine, List<Shape> shapes, double minSeconds) {
        List<Result> results = new ArrayList<>();
        for (Shape s : shapes) {
            results.add(measure(engine, s, minSeconds));
        }
        return new Report(results, engine.options().intraOpThreads());
    }

    private static Result measure(OrtEngine engine, Shape s, double minSeconds) {
        Graph g = new Graph("matmul_" + s.m() + "x" + s.k() + "x" + s.n());
        GraphBuilder b = new GraphBuilder(g);
        Value x = b.input("x", TensorType.of(DataType.FLOAT, s.m(), s.k()));
        b.output(b.matMul(x, b.initializer("W", filled(s.k(), s.n(), 0.001f))), "y");
        try (CompiledGraph cg = engine.compile(new Model(g, GraphBuilder.DEFAULT_OPSET));
                OnnxTensor xt = OrtTensors.wrap(engine.environment(), filled(s.m(), s.k(), 0.5f));
                OnnxTensor yt = OrtTensors.wrapBuffer(engine.environment(),
                        ByteBuffer.allocateDirect(4 * s.m() * s.n()).order(ByteOrder.LITTLE_ENDIAN),
                        DataType.FLOAT, new long[] {s.m(), s.n()})) {
            Map<String, OnnxTensor> in = Map.of("x", xt);
            Map<String, OnnxTensor> out = Map.of("y", yt);
            for (int i = 0; i < 2; i++) {
                runOnce(cg, in, out);
            }
            List<Double> times = new ArrayList<>();
            long start = System.nanoTime();
            while (times.size() < 3 || (System.nanoTime() - start) / 1e9 < minSeconds) {
                long t0 = System.nanoTime();
                runOnce(cg, in, out);
                times.add((System.nanoTime() - t0) / 1e9);
            }
            double[] sorted = times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            return new Result(s, sorted.length, sorted[sorted.length / 2]);
        }
    }

    private static void runOnce(CompiledGraph cg, Map<String, OnnxTensor> in, Map<String, OnnxTensor> out) {
        try (OrtSession.Result r = cg.runOrt(in, Set.of(), out)) {
            Objects.requireNonNull(r);
        }
    }

    private static Tensor filled(int rows, int cols, float scale) {
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.multiplyExact(4 * rows, cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            buf.putFloat(((i * 7919) % 1000) * scale);
        }
        return Tensor.of(DataType.FLOAT, new long[] {rows, cols}, buf.flip());
    }

    /** Prints a report. */
    public static String format(Report r) {
        StringBuilder sb = new StringBuilder();
        sb.append("ONNX Runtime MatMul float32, intra-op threads ").append(r.threads()).append('\n');
        r.results().forEach(x -> sb.append(x).append('\n'));
        sb.append(String.format("combined: %.1f GFLOP/s%n", r.combinedGflops()));
        return sb.toString();
    }
}
