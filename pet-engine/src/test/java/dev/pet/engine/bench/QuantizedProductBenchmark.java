package dev.pet.engine.bench;

import dev.pet.engine.CompiledGraph;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * One product {@code y = x[M, K] · W[K, N]} at the GPT-2 small train step's shapes (M = 512 tokens), float MatMul
 * against ONNX Runtime's MatMulNBits (4/8 bits, int8/fp32 compute, blocks of 32/64/128, with and without weight
 * pre-packing), the {@code dequantize} kernel and the {@code matmul_integer} kernel (8-bit codes per channel,
 * activations quantized per row, ONNX Runtime's int8 GEMM), each timed in turns (rounds) so the ratios hold on a
 * shared machine:
 *
 * <pre>
 * ./mvnw -B -q -pl pet-engine -am test -Dtest='QuantizedProductBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true
 * </pre>
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class QuantizedProductBenchmark {
    private static final int M = 512;
    private static final int ROUNDS = 9;
    private static final int CALLS = 20;

    record Variant(String name, QuantSpec spec, boolean prepack) {
    }

    @Test
    void productsAtGpt2SmallShapes() {
        QuantSpec.Compute i8 = QuantSpec.Compute.INT8;
        QuantSpec.Compute f32 = QuantSpec.Compute.FP32;
        QuantSpec.Kernel nb = QuantSpec.Kernel.MATMUL_NBITS;
        List<Variant> variants = List.of(new Variant("fp32 MatMul", null, false),
                new Variant("q4 int8 bs32", new QuantSpec(4, 32, true, i8, nb), true),
                new Variant("q4 int8 bs64", new QuantSpec(4, 64, true, i8, nb), true),
                new Variant("q4 int8 bs128", new QuantSpec(4, 128, true, i8, nb), true),
                new Variant("q4 int8 bs64 asym", new QuantSpec(4, 64, false, i8, nb), true),
                new Variant("q8 int8 bs64", new QuantSpec(8, 64, true, i8, nb), true),
                new Variant("q8 int8 bs128", new QuantSpec(8, 128, true, i8, nb), true),
                new Variant("q8 matmul_integer", new QuantSpec(8, 64, true, i8, QuantSpec.Kernel.MATMUL_INTEGER), true),
                new Variant("q4 fp32 bs64", new QuantSpec(4, 64, true, f32, nb), true),
                new Variant("q4 int8 bs64 unpacked", new QuantSpec(4, 64, true, i8, nb), false),
                new Variant("q4 dequantize bs64", new QuantSpec(4, 64, true, f32, QuantSpec.Kernel.DEQUANTIZE), true));
        // (K, N): c_attn, attn c_proj, c_fc, mlp c_proj; the backward's products swap K and N
        int[][] shapes = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {2304, 768}};
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "M=%d, %d threads, median of %d rounds of %d"
                + " calls, ms per call (GFLOP/s)%n", M, Runtime.getRuntime().availableProcessors(), ROUNDS, CALLS));
        out.append(String.format(Locale.ROOT, "%-22s", "variant"));
        for (int[] s : shapes) {
            out.append(String.format(Locale.ROOT, " %20s", "K=" + s[0] + " N=" + s[1]));
        }
        out.append('\n');
        double[][] ms = new double[variants.size()][shapes.length];
        for (int si = 0; si < shapes.length; si++) {
            int k = shapes[si][0];
            int n = shapes[si][1];
            Random r = new Random(k + 31L * n);
            float[] w = new float[k * n];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) (r.nextGaussian() * 0.02);
            }
            float[] x = new float[M * k];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            Map<String, Tensor> feed = Map.of("x", Tensor.ofFloats(x, M, k));
            List<OrtEngine> engines = new ArrayList<>();
            List<CompiledGraph> graphs = new ArrayList<>();
            try {
                for (Variant v : variants) {
                    Graph g = new Graph("mm");
                    GraphBuilder b = new GraphBuilder(g);
                    Value xIn = b.input("x", TensorType.of(DataType.FLOAT, M, k));
                    b.output(b.matMul(xIn, b.initializer("W", Tensor.ofFloats(w, k, n))), "y");
                    Model m = new Model(g, GraphBuilder.DEFAULT_OPSET);
                    if (v.spec() != null) {
                        QuantizedLinears.quantize(m, List.of("W"), v.spec(), false);
                    }
                    OrtEngine e = new OrtEngine(EngineOptions.defaults().withPrepackQuantized(v.prepack()));
                    engines.add(e);
                    graphs.add(e.compile(m));
                }
                double[][] t = new double[variants.size()][ROUNDS];
                for (CompiledGraph c : graphs) {
                    c.run(feed);
                }
                for (int round = 0; round < ROUNDS; round++) {
                    for (int vi = 0; vi < variants.size(); vi++) {
                        long t0 = System.nanoTime();
                        for (int call = 0; call < CALLS; call++) {
                            graphs.get(vi).run(feed);
                        }
                        t[vi][round] = (System.nanoTime() - t0) / 1e6 / CALLS;
                    }
                }
                for (int vi = 0; vi < variants.size(); vi++) {
                    Arrays.sort(t[vi]);
                    ms[vi][si] = t[vi][ROUNDS / 2];
                }
            } finally {
                graphs.forEach(CompiledGraph::close);
                engines.forEach(OrtEngine::close);
            }
        }
        for (int vi = 0; vi < variants.size(); vi++) {
            out.append(String.format(Locale.ROOT, "%-22s", variants.get(vi).name()));
            for (int si = 0; si < shapes.length; si++) {
                double gflops = 2.0 * M * shapes[si][0] * shapes[si][1] / (ms[vi][si] / 1e3) / 1e9;
                out.append(String.format(Locale.ROOT, " %9.2f ms (%5.0f)", ms[vi][si], gflops));
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
