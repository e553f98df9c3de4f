package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * The graph rewrite that keeps frozen linear weights quantized: every {@code MatMul(x, W[K, N])} or
 * {@code Gemm(x, W, transB)} reading a chosen weight becomes ONNX Runtime's {@code com.microsoft.MatMulNBits}
 * over the weight's {@link QuantizedMatrix} (a Gemm's bias stays a separate Add), and the float weight leaves the
 * graph. With {@code backward} set, a second copy quantized along the other axis ({@code <weight>.qweight_t}, ...)
 * is added for the gradient rule, because MatMulNBits multiplies only by {@code Bᵀ} and {@code dX = dY · W} needs
 * the other orientation; the frozen weight never exists in float inside the step. Weights are quantized one at a
 * time (one float copy of one weight in memory) and the quantized copies are written to a {@link ScratchFile}, so
 * ONNX Runtime memory-maps them and the Java heap holds none of them.
 */
public final class QuantizedLinears {
    /** ONNX Runtime's contrib-op domain. */
    public static final String DOMAIN = "com.microsoft";
    public static final String OP = "MatMulNBits";
    private static final String CODES = ".qweight";
    private static final String SCALES = ".scales";
    private static final String ZEROS = ".qzeros";
    private static final String TRANSPOSED = "_t";

    private QuantizedLinears() {
    }

    /**
     * One quantized weight.
     *
     * @param weight        the float weight's initializer name
     * @param outFeatures   N
     * @param inFeatures    K
     * @param relativeError ‖W − Ŵ‖_F / ‖W‖_F of the forward copy
     * @param bytes         bytes held for it (both copies when quantized for training)
     * @param padded        true when K is not a multiple of the block size (the last block is zero-padded)
     */
    public record Layer(String weight, long outFeatures, long inFeatures, double relativeError, long bytes,
            boolean padded) {
        public long parameters() {
            return outFeatures * inFeatures;
        }
    }

    /** What a rewrite quantized. */
    public record Result(QuantSpec spec, List<Layer> layers) {
        public Result {
            Objects.requireNonNull(spec, "spec");
            layers = List.copyOf(layers);
        }

        public long parameters() {
            return layers.stream().mapToLong(Layer::parameters).sum();
        }

        public long bytes() {
            return layers.stream().mapToLong(Layer::bytes).sum();
        }
    }

    /** A weight as its linear nodes read it: [N, K] (nn.Linear, Gemm transB) or [K, N] (Conv1D, MatMul). */
    private record Reader(Node node, boolean kAlongColumns) {
    }

    /**
     * Quantizes the named frozen weights of {@code model} in place (see the class comment). Each must be a 2-D
     * initializer read only as the B operand of MatMul or Gemm (transA 0, alpha 1, beta 1); anything else is
     * refused naming the weight and its reader.
     */
    public static Result quantize(Model model, Collection<String> weights, QuantSpec spec, boolean backward) {
        Objects.requireNonNull(spec, "spec");
        Graph g = model.graph();
        List<Layer> layers = new ArrayList<>();
        ScratchFile scratch = weights.isEmpty() ? null : ScratchFile.create("quantized");
        for (String weight : weights) {
            Tensor w = g.initializer(weight);
            if (w == null) {
                throw new OnnxException("cannot quantize '" + weight + "': the graph has no such initializer");
            }
            if (w.rank() != 2) {
                throw new OnnxException("cannot quantize '" + weight + "': expected a 2-D weight, found " + w);
            }
            List<Reader> readers = readers(g, weight);
            boolean kAlongColumns = readers.get(0).kAlongColumns;
            // One float copy of one weight at a time; both quantized copies go to the scratch file at once.
            float[] values = BlockQuantizer.values(w);
            QuantizedMatrix fwd = stored(scratch, BlockQuantizer.quantize(values, w.dim(0), w.dim(1), kAlongColumns,
                    spec));
            List<Value> fwdInputs = addInitializers(g, weight, "", fwd);
            long bytes = fwd.bytes();
            if (backward) {
                QuantizedMatrix bwd = stored(scratch, BlockQuantizer.quantize(values, w.dim(0), w.dim(1),
                        !kAlongColumns, spec));
                addInitializers(g, weight, TRANSPOSED, bwd);
                bytes += bwd.bytes();
            }
            for (Reader r : readers) {
                replace(g, r.node, fwdInputs, fwd);
            }
            g.dropInitializer(weight);
            layers.add(new Layer(weight, fwd.rows(), fwd.columns(), fwd.relativeError(), bytes, fwd.padded()));
        }
        if (!layers.isEmpty()) {
            model.opsets().put(DOMAIN, 1L);
            g.sortTopologically();
        }
        return new Result(spec, layers);
    }

    /**
     * {@code q} with its codes, scales and zero points moved to {@code scratch}: ONNX Runtime then maps them from the
     * file instead of copying them out of Java memory, and the heap copies can go.
     */
    private static QuantizedMatrix stored(ScratchFile scratch, QuantizedMatrix q) {
        List<Tensor> parts = new ArrayList<>(List.of(q.codes(), q.scales()));
        if (q.zeroPoints() != null) {
            parts.add(q.zeroPoints());
        }
        List<Tensor> s = scratch.append(parts);
        return new QuantizedMatrix(q.rows(), q.columns(), q.spec(), s.get(0), s.get(1),
                q.zeroPoints() == null ? null : s.get(2), q.sumSquares(), q.errorSquares());
    }

    private static List<Reader> readers(Graph g, String weight) {
        Value v = g.requireValue(weight);
        if (v.uses().isEmpty()) {
            throw new OnnxException("cannot quantize '" + weight + "': nothing reads it");
        }
        List<Reader> out = new ArrayList<>();
        for (Node n : v.uses()) {
            boolean asB = n.domain().isEmpty() && n.inputCount() >= 2 && n.input(1) == v && n.input(0) != v;
            if (asB && n.opType().equals("MatMul")) {
                out.add(new Reader(n, false));
            } else if (asB && n.opType().equals("Gemm") && n.intAttr("transA", 0) == 0
                    && n.floatAttr("alpha", 1f) == 1f && n.floatAttr("beta", 1f) == 1f) {
                out.add(new Reader(n, n.intAttr("transB", 0) != 0));
            } else {
                throw new OnnxException("cannot quantize '" + weight + "': it is read by " + n.describe()
                        + ", which is not a linear (MatMul, or Gemm with transA 0, alpha 1, beta 1, reading it as B)");
            }
        }
        return out;
    }

    private static List<Value> addInitializers(Graph g, String weight, String suffix, QuantizedMatrix q) {
        List<Value> inputs = new ArrayList<>();
        inputs.add(g.setInitializer(weight + CODES + suffix, q.codes()));
        inputs.add(g.setInitializer(weight + SCALES + suffix, q.scales()));
        if (q.zeroPoints() != null) {
            inputs.add(g.setInitializer(weight + ZEROS + suffix, q.zeroPoints()));
        }
        return inputs;
    }

    private static Attribute[] attributes(long k, long n, QuantSpec spec) {
        return new Attribute[] {Attribute.of("K", k), Attribute.of("N", n), Attribute.of("bits", (long) spec.bits()),
                Attribute.of("block_size", (long) spec.blockSize()),
                Attribute.of("accuracy_level", (long) spec.compute().accuracyLevel())};
    }

    /** Replaces one MatMul/Gemm by MatMulNBits (+ Add for a Gemm's bias) producing the same value. */
    private static void replace(Graph g, Node old, List<Value> quantInputs, QuantizedMatrix q) {
        Value out = old.output(0);
        String outName = out.name();
        List<Value> inputs = new ArrayList<>();
        inputs.add(old.input(0));
        inputs.addAll(quantInputs);
        Value bias = old.inputCount() > 2 ? old.input(2) : null;
        String name = g.uniqueNodeName(old.name().isEmpty() ? OP : old.name() + "/" + OP);
        Node nbits = g.addNode(OP, DOMAIN, name, inputs, List.of(g.uniqueName(outName + "/nbits")),
                List.of(attributes(q.columns(), q.rows(), q.spec())));
        Value product = nbits.output(0);
        product.setType(out.type());
        Value result = product;
        if (bias != null) {
            Node add = g.addNode("Add", "", g.uniqueNodeName(name + "/bias"), List.of(product, bias),
                    List.of(g.uniqueName(outName + "/biased")), List.of());
            result = add.output(0);
            result.setType(out.type());
        }
        g.replaceUses(out, result);
        g.removeNode(old);
        result.rename(outName);
    }

    /**
     * The inverse rewrite, for exports: every MatMulNBits node this class made becomes a MatMul (or, when
     * {@code storedOutIn} says the weight was stored [out, in], a Gemm with transB) over the dequantized float
     * weight under its original name, so merging adapters into it gives the weights the quantized model computed
     * with. Returns the names of the weights restored.
     */
    public static List<String> dequantize(Model model, java.util.function.Predicate<String> storedOutIn) {
        Graph g = model.graph();
        List<String> restored = new ArrayList<>();
        for (Node n : List.copyOf(g.nodes())) {
            if (!n.domain().equals(DOMAIN) || !n.opType().equals(OP) || !n.input(1).name().endsWith(CODES)) {
                continue;
            }
            String weight = n.input(1).name().substring(0, n.input(1).name().length() - CODES.length());
            QuantizedMatrix q = read(g, n);
            boolean outIn = storedOutIn.test(weight);
            Tensor w = g.initializer(weight);
            if (w == null) {
                w = layout(q, outIn);
                g.setInitializer(weight, w);
                restored.add(weight);
            }
            Value x = n.input(0);
            Value out = n.output(0);
            String outName = out.name();
            Node linear = g.addNode(outIn ? "Gemm" : "MatMul", "", g.uniqueNodeName(n.name() + "/dequantized"),
                    List.of(x, g.requireValue(weight)), List.of(g.uniqueName(outName + "/float")),
                    outIn ? List.of(Attribute.of("transB", 1L)) : List.of());
            linear.output(0).setType(out.type());
            g.replaceUses(out, linear.output(0));
            List<Value> quantInputs = n.inputs().subList(1, n.inputCount());
            g.removeNode(n);
            linear.output(0).rename(outName);
            for (Value v : quantInputs) {
                dropIfUnread(g, v.name());
                dropIfUnread(g, v.name() + TRANSPOSED);
            }
        }
        if (!usesContribOps(model)) {
            model.opsets().remove(DOMAIN);
        }
        g.sortTopologically();
        return restored;
    }

    private static void dropIfUnread(Graph g, String name) {
        Value v = g.value(name);
        if (v != null && v.uses().isEmpty() && g.initializer(name) != null) {
            g.dropInitializer(name);
        }
    }

    /** The quantized weight a MatMulNBits node reads, from its initializers and attributes. */
    public static QuantizedMatrix read(Graph g, Node n) {
        Tensor codes = g.initializer(n.input(1).name());
        Tensor scales = g.initializer(n.input(2).name());
        Tensor zeros = n.inputCount() > 3 && n.input(3) != null ? g.initializer(n.input(3).name()) : null;
        if (codes == null || scales == null) {
            throw new OnnxException(n.describe() + ": its quantized weight and scales must be initializers");
        }
        long level = n.intAttr("accuracy_level", 0);
        QuantSpec spec = new QuantSpec((int) n.intAttr("bits", 4), (int) n.intAttr("block_size", -1), zeros == null,
                level == QuantSpec.Compute.INT8.accuracyLevel() ? QuantSpec.Compute.INT8 : QuantSpec.Compute.FP32);
        return new QuantizedMatrix(n.intAttr("N", -1), n.intAttr("K", -1), spec, codes, scales, zeros, 0, 0);
    }

    /** A dequantized matrix as float32 in a weight's layout: [N, K] when stored [out, in], else [K, N]. */
    static Tensor layout(QuantizedMatrix q, boolean outIn) {
        float[] nk = q.dequantize();
        int n = Math.toIntExact(q.rows());
        int k = Math.toIntExact(q.columns());
        ByteBuffer b = ByteBuffer.allocateDirect(Math.multiplyExact(nk.length, 4)).order(ByteOrder.LITTLE_ENDIAN);
        var fb = b.asFloatBuffer();
        if (outIn) {
            fb.put(nk);
        } else {
            for (int r = 0; r < k; r++) {
                for (int c = 0; c < n; c++) {
                    fb.put(nk[c * k + r]);
                }
            }
        }
        return Tensor.of(DataType.FLOAT, outIn ? new long[] {n, k} : new long[] {k, n}, b);
    }

    /**
     * The inputs of the backward product for a MatMulNBits node this class made: the transposed copy's codes,
     * scales and (asymmetric) zero points. Fails when the node was quantized without backward copies.
     */
    public static List<Value> backwardInputs(Node n) {
        Graph g = n.graph();
        List<Value> out = new ArrayList<>();
        for (int i = 1; i < n.inputCount(); i++) {
            Value v = n.input(i);
            Value t = v == null ? null : g.value(v.name() + TRANSPOSED);
            if (v != null && (t == null || g.initializer(t.name()) == null)) {
                throw new OnnxException(n.describe() + " has no transposed quantized copy '" + v.name() + TRANSPOSED
                        + "' for its input gradient: quantize the weight with backward copies for training");
            }
            out.add(t);
        }
        return out;
    }

    /** MatMulNBits attributes of the backward product {@code dX = dY · W} of a forward node (K and N swapped). */
    public static Attribute[] backwardAttributes(Node n) {
        long k = n.intAttr("K", -1);
        long nOut = n.intAttr("N", -1);
        return new Attribute[] {Attribute.of("K", nOut), Attribute.of("N", k), n.attribute("bits"),
                n.attribute("block_size"), n.attribute("accuracy_level")};
    }

    /** True when the model has a node of ONNX Runtime's contrib domain (it then runs only on ONNX Runtime). */
    public static boolean usesContribOps(Model model) {
        return model.graph().nodes().stream().anyMatch(n -> n.domain().equals(DOMAIN));
    }

    /**
     * {@code dequantize(quantize(w))} in {@code w}'s own layout and as float32: what the quantized model computes
     * with, for merging adapters into it and for measuring the error against the original.
     */
    public static Tensor roundTrip(Tensor w, boolean kAlongColumns, QuantSpec spec) {
        return layout(BlockQuantizer.quantize(w, kAlongColumns, spec), kAlongColumns);
    }
}
