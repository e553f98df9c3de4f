package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.build.GraphBuilder;
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
 * The graph rewrite that keeps frozen linear weights quantized; the float weight leaves the graph. Each chosen
 * weight is quantized once by {@link BlockQuantizer} and every {@code MatMul(x, W[K, N])} or
 * {@code Gemm(x, W, transB)} reading it is lowered by the spec's {@link QuantSpec.Kernel}:
 * <ul>
 *   <li>{@code matmul_nbits}: ONNX Runtime's {@code com.microsoft.MatMulNBits} over the {@link QuantizedMatrix}
 *       (a Gemm's bias stays a separate Add). With {@code backward} set, a second copy quantized along the other
 *       axis ({@code <weight>.qweight_t}, ...) is added for the gradient rule, because MatMulNBits multiplies only
 *       by {@code Bᵀ} and {@code dX = dY · W} needs the other orientation; the frozen weight never exists in float
 *       inside the step.</li>
 *   <li>{@code dequantize}: standard ONNX at opset 21 (the model is raised to it): {@code DequantizeLinear} with
 *       {@code axis} 1 and {@code block_size} over the same bytes viewed as a uint4/uint8 tensor [N, K] (the
 *       MatMulNBits layout is the ONNX packing of [N, K] when K fills whole blocks: row-major, the even element in
 *       the low nibble), per-block scales [N, K/block] and zero points [N, K/block] (the middle code when
 *       symmetric), into {@code Gemm(x, Ŵ, transB=1)} on x flattened to 2-D. Gemm multiplies by {@code Ŵᵀ} and,
 *       in the gradient, by {@code Ŵ} without a transposed copy, so the one stored copy serves both; the gradient
 *       rule dequantizes again rather than keeping Ŵ alive from the forward pass (see
 *       {@code QuantizedGradients}).</li>
 *   <li>{@code matmul_integer}: int8 codes per output channel into ONNX Runtime's int8 GEMM, through a function the
 *       model defines ({@link IntegerLinears}).</li>
 * </ul>
 */
public final class QuantizedLinears {
    /** ONNX Runtime's contrib-op domain. */
    public static final String DOMAIN = "com.microsoft";
    public static final String OP = "MatMulNBits";
    /** ONNX Runtime's contrib op that gathers rows of a block-quantized table and dequantizes them. */
    public static final String GATHER_OP = "GatherBlockQuantized";
    /** The standard op of the {@code dequantize} kernel. */
    public static final String DEQUANTIZE_OP = "DequantizeLinear";
    /** The opset {@code DequantizeLinear} gained {@code block_size} and 4-bit types at. */
    public static final int DEQUANTIZE_OPSET = 21;
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
     * @param lookup        true for a token-embedding table looked up by GatherBlockQuantized rather than a linear
     *                      ({@link #quantizeEmbedding}); bytes 0 when it reads a tied head's codes
     */
    public record Layer(String weight, long outFeatures, long inFeatures, double relativeError, long bytes,
            boolean padded, boolean lookup) {
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
    record Reader(Node node, boolean kAlongColumns) {
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
            if (spec.kernel() == QuantSpec.Kernel.DEQUANTIZE) {
                layers.add(lowerDequantize(model, scratch, weight, w, readers, spec));
                continue;
            }
            if (spec.kernel() == QuantSpec.Kernel.MATMUL_INTEGER) {
                layers.add(IntegerLinears.lower(model, scratch, weight, w, readers, backward));
                continue;
            }
            // The weight is streamed once per copy (never whole as floats); each copy goes to the scratch file.
            QuantizedMatrix fwd = stored(scratch, BlockQuantizer.quantize(w, kAlongColumns, spec));
            List<Value> fwdInputs = addInitializers(g, weight, "", fwd);
            long bytes = fwd.bytes();
            if (backward) {
                QuantizedMatrix bwd = stored(scratch, BlockQuantizer.quantize(w, !kAlongColumns, spec));
                addInitializers(g, weight, TRANSPOSED, bwd);
                bytes += bwd.bytes();
            }
            for (Reader r : readers) {
                replace(g, r.node, fwdInputs, fwd);
            }
            g.dropInitializer(weight);
            layers.add(new Layer(weight, fwd.rows(), fwd.columns(), fwd.relativeError(), bytes, fwd.padded(),
                    false));
        }
        if (!layers.isEmpty()) {
            if (spec.kernel() == QuantSpec.Kernel.MATMUL_NBITS) {
                model.opsets().put(DOMAIN, 1L);
            } else if (spec.kernel() == QuantSpec.Kernel.MATMUL_INTEGER) {
                IntegerLinears.define(model);
            }
            g.sortTopologically();
            // Every weight left a heap buffer of its codes and scales behind (up to ~150 MB for a 128256-wide head)
            // and the slabs it was read in: G1 keeps the heap it grew for them committed and resident for the rest
            // of the run unless a full collection shrinks it. Once, here, before the long phase that needs the memory.
            System.gc();
        }
        return new Result(spec, layers);
    }

    /**
     * Quantizes the token-embedding table {@code table} [rows, K], read by Gather along axis 0, into ONNX Runtime's
     * {@code com.microsoft.GatherBlockQuantized}: codes as uint8 [rows, K·bits/8] (the MatMulNBits packing of a
     * weight quantized along K, which for whole blocks is row-major with the even element in the low nibble), scales
     * [rows, K/block] and, when asymmetric, zero points [rows, ⌈blocks·bits/8⌉]. Only looked-up rows are ever
     * dequantized; the table is frozen, so no gradient flows through it. {@code sameAs}, when not null, is a weight
     * this class quantized from the same values along the same axis (a tied output head's forward copy): its stored
     * codes serve the lookup too. The float table leaves the graph once nothing else reads it.
     *
     * @throws QuantSpec.Invalid under {@code block_size} when the block size does not divide K (the op needs whole
     *                           blocks)
     */
    public static Layer quantizeEmbedding(Model model, String table, QuantSpec spec, Layer sameAs) {
        Objects.requireNonNull(spec, "spec");
        Graph g = model.graph();
        Tensor w = g.initializer(table);
        if (w == null || w.rank() != 2) {
            throw new OnnxException("cannot quantize the embedding '" + table + "': expected a 2-D initializer, found "
                    + (w == null ? "none" : w.toString()));
        }
        Value v = g.requireValue(table);
        List<Node> gathers = v.uses().stream().filter(n -> n.domain().isEmpty() && n.opType().equals("Gather")
                && n.input(0) == v && n.intAttr("axis", 0) == 0).toList();
        if (gathers.isEmpty()) {
            throw new OnnxException("cannot quantize the embedding '" + table + "': no Gather along axis 0 reads it");
        }
        long rows = w.dim(0);
        long k = w.dim(1);
        requireLookupKernel(spec);
        if (k % spec.blockSize() != 0) {
            throw new QuantSpec.Invalid("block_size", spec.blockSize() + " does not divide the width " + k
                    + " of the embedding '" + table + "': GatherBlockQuantized needs whole blocks");
        }
        QuantizedMatrix q = sameAs == null ? null : forwardCopy(g, sameAs.weight());
        long bytes = 0;
        if (q == null || q.rows() != rows || q.columns() != k || q.spec().bits() != spec.bits()
                || q.spec().blockSize() != spec.blockSize() || q.spec().symmetric() != spec.symmetric()) {
            ScratchFile scratch = ScratchFile.create("quantized");
            q = stored(scratch, BlockQuantizer.quantize(w, true, spec));
            bytes = q.bytes();
        }
        List<Value> data = new ArrayList<>();
        data.add(g.setInitializer(g.uniqueName(table + CODES),
                new Tensor(DataType.UINT8, new long[] {rows, k * spec.bits() / 8}, q.codes().data())));
        data.add(g.setInitializer(g.uniqueName(table + SCALES), q.scales().reshape(rows, q.blocksPerRow())));
        if (q.zeroPoints() != null) {
            data.add(g.setInitializer(g.uniqueName(table + ZEROS), q.zeroPoints().reshape(rows,
                    QuantizedMatrix.zeroPointBytesPerRow(q.blocksPerRow(), spec.bits()))));
        }
        for (Node old : gathers) {
            Value out = old.output(0);
            String outName = out.name();
            List<Value> inputs = new ArrayList<>(List.of(data.get(0), old.input(1), data.get(1)));
            inputs.addAll(data.subList(2, data.size()));
            Node gq = g.addNode(GATHER_OP, DOMAIN, g.uniqueNodeName(old.name().isEmpty() ? GATHER_OP
                    : old.name() + "/" + GATHER_OP), inputs, List.of(g.uniqueName(outName + "/quantized")),
                    List.of(Attribute.of("gather_axis", 0L), Attribute.of("quantize_axis", 1L),
                            Attribute.of("block_size", (long) spec.blockSize()), Attribute.of("bits",
                                    (long) spec.bits())));
            gq.output(0).setType(out.type());
            g.replaceUses(out, gq.output(0));
            g.removeNode(old);
            gq.output(0).rename(outName);
        }
        if (v.uses().isEmpty()) {
            g.dropInitializer(table);
        }
        model.opsets().put(DOMAIN, 1L);
        g.sortTopologically();
        return new Layer(table, rows, k, sameAs != null && bytes == 0 ? sameAs.relativeError() : q.relativeError(),
                bytes, false, true);
    }

    /** Refuses a kernel with no quantized lookup: {@link #quantizeEmbedding} needs {@code matmul_nbits}. */
    public static void requireLookupKernel(QuantSpec spec) {
        if (spec.kernel() == QuantSpec.Kernel.DEQUANTIZE) {
            throw new QuantSpec.Invalid("kernel", spec.kernel() + " keeps to standard ONNX, which has no quantized"
                    + " lookup; quantizing the embeddings needs kernel matmul_nbits (ONNX Runtime's"
                    + " GatherBlockQuantized)");
        }
        if (spec.kernel() != QuantSpec.Kernel.MATMUL_NBITS) {
            throw new QuantSpec.Invalid("kernel", spec.kernel() + " has no quantized lookup (its codes have one scale"
                    + " per channel, GatherBlockQuantized needs blocks); quantizing the embeddings needs kernel"
                    + " matmul_nbits");
        }
    }

    /** The forward copy of a weight this class quantized for MatMulNBits, or null when there is none. */
    private static QuantizedMatrix forwardCopy(Graph g, String weight) {
        Value codes = g.value(weight + CODES);
        if (codes == null) {
            return null;
        }
        return codes.uses().stream().filter(n -> n.domain().equals(DOMAIN) && n.opType().equals(OP)
                && n.input(1) == codes).findFirst().map(n -> read(g, n)).orElse(null);
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

    /**
     * The {@code dequantize} lowering of one weight (see the class comment): one DequantizeLinear shared by its
     * readers, each becoming a Gemm with transB over it.
     */
    private static Layer lowerDequantize(Model model, ScratchFile scratch, String weight, Tensor w,
            List<Reader> readers, QuantSpec spec) {
        Graph g = model.graph();
        long k = readers.get(0).kAlongColumns ? w.dim(1) : w.dim(0);
        if (k % spec.blockSize() != 0) {
            throw new QuantSpec.Invalid("block_size", spec.blockSize() + " does not divide the input dimension " + k
                    + " of '" + weight + "': kernel dequantize needs whole blocks (kernel matmul_nbits pads the last"
                    + " block with zeros)");
        }
        OpsetUpgrade.atLeast(model, DEQUANTIZE_OPSET);
        QuantizedMatrix q = BlockQuantizer.quantize(w, readers.get(0).kAlongColumns, spec);
        List<Value> inputs = new ArrayList<>();
        List<Tensor> stored = scratch.append(List.of(onnxCodes(q), q.scales().reshape(q.rows(), q.blocksPerRow()),
                onnxZeroPoints(q)));
        Tensor codes = stored.get(0);
        Tensor zeros = stored.get(2);
        inputs.add(g.setInitializer(weight + CODES, codes));
        inputs.add(g.setInitializer(weight + SCALES, stored.get(1)));
        inputs.add(g.setInitializer(weight + ZEROS, zeros));
        Node dq = g.addNode(DEQUANTIZE_OP, "", g.uniqueNodeName(weight + "/" + DEQUANTIZE_OP), inputs,
                List.of(g.uniqueName(weight + "/dequantized")),
                List.of(Attribute.of("axis", 1L), Attribute.of("block_size", (long) spec.blockSize())));
        dq.output(0).setType(dev.pet.onnx.ir.TensorType.of(DataType.FLOAT, q.rows(), q.columns()));
        GraphBuilder b = new GraphBuilder(g, (int) model.opset());
        for (Reader r : readers) {
            lowerReader(g, b, r.node, dq.output(0), q.rows());
        }
        g.dropInitializer(weight);
        return new Layer(weight, q.rows(), q.columns(), q.relativeError(), codes.byteSize() + q.scales().byteSize()
                + zeros.byteSize(), false, false);
    }

    /** A reader of a weight as {@code Gemm(x, Ŵ[N, K], transB=1)} (+ C), x flattened to 2-D and reshaped back. */
    private static void lowerReader(Graph g, GraphBuilder b, Node old, Value dequantized, long n) {
        Value out = old.output(0);
        String outName = out.name();
        Value x = old.input(0);
        Value result;
        if (old.opType().equals("Gemm")) {
            List<Value> in = new ArrayList<>(List.of(x, dequantized));
            if (old.inputCount() > 2 && old.input(2) != null) {
                in.add(old.input(2));
            }
            result = b.op("Gemm", in, Attribute.of("transB", 1L));
        } else {
            if (!x.type().hasRank()) {
                throw new OnnxException("cannot quantize the weight of " + old.describe() + " with kernel dequantize:"
                        + " the rank of its input '" + x.name() + "' is unknown");
            }
            int rank = x.type().rank();
            Value x2 = rank == 2 ? x : b.flatten(x, rank - 1);
            result = b.op("Gemm", List.of(x2, dequantized), Attribute.of("transB", 1L));
            if (rank != 2) {
                Value shape = b.concat(List.of(b.shape(x, 0, rank - 1), b.ints(n)), 0);
                result = b.reshape(result, shape);
            }
        }
        result.setType(out.type());
        g.replaceUses(out, result);
        g.removeNode(old);
        result.rename(outName);
    }

    /** The codes as the ONNX tensor uint4/uint8 [N, K]: the same bytes (K fills whole blocks, so no padding). */
    static Tensor onnxCodes(QuantizedMatrix q) {
        DataType t = q.spec().bits() == 4 ? DataType.UINT4 : DataType.UINT8;
        return new Tensor(t, new long[] {q.rows(), q.columns()}, q.codes().data());
    }

    /**
     * The zero points as the ONNX tensor uint4/uint8 [N, K/block], packed continuously (MatMulNBits pads each row
     * to whole bytes); symmetric blocks get the middle code, which MatMulNBits assumes when none is stored.
     */
    static Tensor onnxZeroPoints(QuantizedMatrix q) {
        long blocks = q.blocksPerRow();
        long count = Math.multiplyExact(q.rows(), blocks);
        DataType t = q.spec().bits() == 4 ? DataType.UINT4 : DataType.UINT8;
        ByteBuffer b = ByteBuffer.allocateDirect(Math.toIntExact(t.bytesFor(count))).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < count; i++) {
            int zp = q.zeroPoint(i / blocks, i % blocks);
            int at = Math.toIntExact(q.spec().bits() == 4 ? i / 2 : i);
            int old = q.spec().bits() == 4 ? Byte.toUnsignedInt(b.get(at)) : 0;
            b.put(at, (byte) (q.spec().bits() == 8 ? zp : (i & 1) == 0 ? (old & 0xF0) | zp : (old & 0x0F) | (zp << 4)));
        }
        return Tensor.of(t, new long[] {q.rows(), blocks}, b);
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
        List<Value> inputs = new ArrayList<>();
        inputs.add(old.input(0));
        inputs.addAll(quantInputs);
        replaceLinear(g, old, OP, DOMAIN, inputs, List.of(attributes(q.columns(), q.rows(), q.spec())), "/nbits");
    }

    /**
     * Replaces linear {@code old} (MatMul, or Gemm with an optional bias) by a {@code domain.op} node over
     * {@code inputs} and, for a Gemm's bias, an Add: the same value under the same name.
     */
    static void replaceLinear(Graph g, Node old, String op, String domain, List<Value> inputs,
            List<Attribute> attributes, String suffix) {
        Value out = old.output(0);
        String outName = out.name();
        Value bias = old.inputCount() > 2 ? old.input(2) : null;
        String name = g.uniqueNodeName(old.name().isEmpty() ? op : old.name() + "/" + op);
        Node product = g.addNode(op, domain, name, inputs, List.of(g.uniqueName(outName + suffix)), attributes);
        Value result = product.output(0);
        result.setType(out.type());
        if (bias != null) {
            Node add = g.addNode("Add", "", g.uniqueNodeName(name + "/bias"), List.of(result, bias),
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
            if (isQuantizedWeight(n)) {
                restored.add(restoreDequantized(g, n, storedOutIn));
                continue;
            }
            if (isQuantizedGather(n)) {
                restoreGather(g, n).ifPresent(restored::add);
                continue;
            }
            if (IntegerLinears.isProduct(n)) {
                IntegerLinears.restore(model, n, storedOutIn).ifPresent(restored::add);
                continue;
            }
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
            for (Value v : restoreLinear(g, n, weight, outIn)) {
                dropIfUnread(g, v.name());
                dropIfUnread(g, v.name() + TRANSPOSED);
            }
        }
        IntegerLinears.undefineIfUnused(model);
        if (!usesContribOps(model)) {
            model.opsets().remove(DOMAIN);
        }
        g.sortTopologically();
        return restored;
    }

    /**
     * Replaces quantized product {@code n} by a MatMul (or, {@code outIn}, a Gemm with transB) of its input and the
     * float {@code weight}, the same value under the same name; returns the quantized inputs it read.
     */
    static List<Value> restoreLinear(Graph g, Node n, String weight, boolean outIn) {
        Value out = n.output(0);
        String outName = out.name();
        Node linear = g.addNode(outIn ? "Gemm" : "MatMul", "", g.uniqueNodeName(n.name() + "/dequantized"),
                List.of(n.input(0), g.requireValue(weight)), List.of(g.uniqueName(outName + "/float")),
                outIn ? List.of(Attribute.of("transB", 1L)) : List.of());
        linear.output(0).setType(out.type());
        g.replaceUses(out, linear.output(0));
        List<Value> quantInputs = List.copyOf(n.inputs().subList(1, n.inputCount()));
        g.removeNode(n);
        linear.output(0).rename(outName);
        return quantInputs;
    }

    /** True for a DequantizeLinear node this class made (kernel dequantize): it reads {@code <weight>.qweight}. */
    public static boolean isQuantizedWeight(Node n) {
        return n.opType().equals(DEQUANTIZE_OP) && (n.domain().isEmpty() || n.domain().equals("ai.onnx"))
                && n.input(0).name().endsWith(CODES) && n.graph().initializer(n.input(0).name()) != null;
    }

    /**
     * Kernel dequantize's inverse: the float weight (the dequantized values) under its original name and layout,
     * read by the Gemm nodes in place of the DequantizeLinear output (transB 1 when stored [out, in], else 0).
     */
    private static String restoreDequantized(Graph g, Node dq, java.util.function.Predicate<String> storedOutIn) {
        String codesName = dq.input(0).name();
        String weight = codesName.substring(0, codesName.length() - CODES.length());
        boolean outIn = storedOutIn.test(weight);
        Value w = g.setInitializer(weight, layout(readDequantize(g, dq), outIn));
        for (Node user : List.copyOf(dq.output(0).uses())) {
            if (!user.opType().equals("Gemm") || user.input(1) != dq.output(0)) {
                throw new OnnxException("cannot dequantize '" + weight + "': its DequantizeLinear is read by "
                        + user.describe() + ", not as a Gemm's B");
            }
            user.setInput(1, w);
            user.setAttribute(Attribute.of("transB", outIn ? 1L : 0L));
        }
        List<Value> quantInputs = List.copyOf(dq.inputs());
        g.removeNode(dq);
        for (Value v : quantInputs) {
            dropIfUnread(g, v.name());
        }
        return weight;
    }

    /** True for a GatherBlockQuantized node {@link #quantizeEmbedding} made: it reads {@code <table>.qweight}. */
    static boolean isQuantizedGather(Node n) {
        return n.domain().equals(DOMAIN) && n.opType().equals(GATHER_OP) && n.input(0).name().endsWith(CODES)
                && n.graph().initializer(n.input(0).name()) != null;
    }

    /**
     * {@link #quantizeEmbedding}'s inverse: a Gather over the dequantized float table under its original name (made
     * once, shared by every lookup). Returns the table's name when this call restored it.
     */
    private static java.util.Optional<String> restoreGather(Graph g, Node gq) {
        String codesName = gq.input(0).name();
        String table = codesName.substring(0, codesName.length() - CODES.length());
        boolean made = g.initializer(table) == null;
        Value t = made ? g.setInitializer(table, layout(readGather(g, gq), true)) : g.requireValue(table);
        Value out = gq.output(0);
        String outName = out.name();
        Node gather = g.addNode("Gather", "", g.uniqueNodeName(gq.name() + "/dequantized"),
                List.of(t, gq.input(1)), List.of(g.uniqueName(outName + "/float")), List.of(Attribute.of("axis", 0L)));
        gather.output(0).setType(out.type());
        g.replaceUses(out, gather.output(0));
        List<Value> quantInputs = new ArrayList<>(gq.inputs());
        quantInputs.remove(1); // the indices
        g.removeNode(gq);
        gather.output(0).rename(outName);
        for (Value v : quantInputs) {
            if (v != null) {
                dropIfUnread(g, v.name());
            }
        }
        return made ? java.util.Optional.of(table) : java.util.Optional.empty();
    }

    /** The quantized table a GatherBlockQuantized node reads, in the MatMulNBits layout (rows = table rows). */
    public static QuantizedMatrix readGather(Graph g, Node gq) {
        Tensor codes = g.initializer(gq.input(0).name());
        Tensor scales = gq.inputCount() > 2 ? g.initializer(gq.input(2).name()) : null;
        Tensor zeros = gq.inputCount() > 3 && gq.input(3) != null ? g.initializer(gq.input(3).name()) : null;
        int bits = (int) gq.intAttr("bits", 4);
        int blockSize = (int) gq.intAttr("block_size", 128);
        if (codes == null || scales == null || codes.rank() != 2 || scales.rank() != 2 || (bits != 4 && bits != 8)) {
            throw new OnnxException(gq.describe() + ": expected uint8 codes [rows, K·bits/8] and scales [rows,"
                    + " K/block] as initializers, with bits 4 or 8");
        }
        long rows = codes.dim(0);
        long k = codes.dim(1) * 8 / bits;
        QuantSpec spec = new QuantSpec(bits, blockSize, zeros == null, QuantSpec.Compute.FP32,
                QuantSpec.Kernel.MATMUL_NBITS);
        long blocks = k / blockSize;
        Tensor blob = new Tensor(DataType.UINT8, new long[] {rows, blocks, spec.blobBytes()}, codes.data());
        return new QuantizedMatrix(rows, k, spec, blob, scales.reshape(rows * blocks),
                zeros == null ? null : zeros.reshape(zeros.elementCount()), 0, 0);
    }

    /** The quantized weight a kernel-dequantize DequantizeLinear node reads, in the MatMulNBits layout. */
    public static QuantizedMatrix readDequantize(Graph g, Node dq) {
        Tensor codes = g.initializer(dq.input(0).name());
        Tensor scales = dq.inputCount() > 1 ? g.initializer(dq.input(1).name()) : null;
        Tensor zeros = dq.inputCount() > 2 && dq.input(2) != null ? g.initializer(dq.input(2).name()) : null;
        if (codes == null || scales == null || zeros == null || codes.rank() != 2 || scales.rank() != 2) {
            throw new OnnxException(dq.describe() + ": expected codes [N, K], scales and zero points [N, K/block]"
                    + " as initializers");
        }
        int bits = codes.dataType() == DataType.UINT4 ? 4 : 8;
        int blockSize = (int) dq.intAttr("block_size", 0);
        long n = codes.dim(0);
        long k = codes.dim(1);
        long blocks = scales.dim(1);
        // Symmetric when every zero point is the middle code; asymmetric ones are repacked per row.
        QuantSpec probe = new QuantSpec(bits, blockSize, true, QuantSpec.Compute.FP32, QuantSpec.Kernel.DEQUANTIZE);
        long zpRow = QuantizedMatrix.zeroPointBytesPerRow(blocks, bits);
        ByteBuffer zp = ByteBuffer.allocateDirect(Math.toIntExact(n * zpRow)).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer src = zeros.buffer();
        boolean symmetric = true;
        for (long i = 0; i < n * blocks; i++) {
            int z = bits == 8 ? Byte.toUnsignedInt(src.get(Math.toIntExact(i)))
                    : (Byte.toUnsignedInt(src.get(Math.toIntExact(i / 2))) >>> ((i & 1) * 4)) & 0x0F;
            symmetric &= z == probe.defaultZeroPoint();
            long row = i / blocks;
            long j = i % blocks;
            int at = Math.toIntExact(row * zpRow + (bits == 4 ? j / 2 : j));
            int old = Byte.toUnsignedInt(zp.get(at));
            zp.put(at, (byte) (bits == 8 ? z : (j & 1) == 0 ? (old & 0xF0) | z : (old & 0x0F) | (z << 4)));
        }
        QuantSpec spec = new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.FP32,
                QuantSpec.Kernel.DEQUANTIZE);
        Tensor mnbCodes = new Tensor(DataType.UINT8, new long[] {n, blocks, spec.blobBytes()}, codes.data());
        return new QuantizedMatrix(n, k, spec, mnbCodes, scales.reshape(n * blocks),
                symmetric ? null : Tensor.of(DataType.UINT8, new long[] {n * zpRow}, zp), 0, 0);
    }

    /** Drops initializer {@code name} when nothing reads it any more. */
    static void dropIfUnread(Graph g, String name) {
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
                level == QuantSpec.Compute.INT8.accuracyLevel() ? QuantSpec.Compute.INT8 : QuantSpec.Compute.FP32,
                QuantSpec.Kernel.MATMUL_NBITS);
        return new QuantizedMatrix(n.intAttr("N", -1), n.intAttr("K", -1), spec, codes, scales, zeros, 0, 0);
    }

    /** A dequantized matrix as float32 in a weight's layout: [N, K] when stored [out, in], else [K, N]. */
    static Tensor layout(QuantizedMatrix q, boolean outIn) {
        return layout(q.dequantize(), q.rows(), q.columns(), outIn);
    }

    /** A float matrix given as [N, K] in a weight's layout: [N, K] when stored [out, in], else [K, N]. */
    static Tensor layout(float[] nk, long rows, long columns, boolean outIn) {
        int n = Math.toIntExact(rows);
        int k = Math.toIntExact(columns);
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

    /** True when the model computes with weights this class quantized (by either kernel). */
    public static boolean hasQuantizedWeights(Model model) {
        return model.graph().nodes().stream().anyMatch(n -> n.domain().equals(DOMAIN) && n.opType().equals(OP)
                || isQuantizedWeight(n) || isQuantizedGather(n) || IntegerLinears.isProduct(n));
    }

    /**
     * True when the model has a node of ONNX Runtime's contrib domain, directly or through kernel matmul_integer's
     * function (it then runs only on ONNX Runtime).
     */
    public static boolean usesContribOps(Model model) {
        return model.graph().nodes().stream().anyMatch(n -> n.domain().equals(DOMAIN) || IntegerLinears.isProduct(n));
    }

    /**
     * {@code dequantize(quantize(w))} in {@code w}'s own layout and as float32: what the quantized model computes
     * with, for merging adapters into it and for measuring the error against the original.
     */
    public static Tensor roundTrip(Tensor w, boolean kAlongColumns, QuantSpec spec) {
        if (spec.perChannel()) {
            ChannelQuantizer.Quantized q = ChannelQuantizer.quantize(w, kAlongColumns);
            return layout(q.dequantize(), q.rows(), q.columns(), kAlongColumns);
        }
        return layout(BlockQuantizer.quantize(w, kAlongColumns, spec), kAlongColumns);
    }
}
