package dev.pet.onnx.quant;

import com.google.protobuf.ByteString;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.AttributeProto;
import dev.pet.onnx.proto.OnnxProto.FunctionProto;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.NodeProto;
import dev.pet.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Kernel {@code matmul_integer}: a frozen weight as int8 codes with one scale per output channel
 * ({@link ChannelQuantizer}), multiplied by {@code dev.pet.DynamicInt8MatMul(X, B, BScale, BZeroPoint)}, a function
 * defined in the model itself (so any ONNX Runtime runs the file; it inlines the function when it loads the model):
 * <pre>
 *   S  = max(ReduceMax(|X|, axis −1) / 127, 1e-30)     one scale per row of X, shape [..., 1]
 *   XQ = QuantizeLinear(X / S, 1, 128)                 uint8, the row's int8 codes + 128
 *   Y  = MatMulIntegerToFloat(XQ, B, 1, BScale, 128, BZeroPoint) · S
 *                                                      com.microsoft: int8 GEMM, then the scales
 * </pre>
 * B holds the codes as int8 (BZeroPoint 0) or as uint8 (BZeroPoint 128), whichever this CPU multiplies exactly
 * ({@link #signedCodes}). One node per product gives autodiff a place for its rule: the input gradient is
 * {@code DynamicInt8MatMul(dY · BScale, Bᵀ, 1, BZeroPoint)}, the same codes transposed
 * ({@code <weight>.qweight_t}), so forward and backward multiply by one Ŵ. Rounding the activations is treated as the identity (straight-through), as
 * MatMulNBits' int8 compute does. Per-row scales keep every token's precision independent of the others in its
 * batch (ONNX Runtime's DynamicQuantizeMatMul uses one scale per tensor).
 */
public final class IntegerLinears {
    /** The domain of the functions PET Runtime defines in its models. */
    public static final String DOMAIN = "dev.pet";
    public static final String OP = "DynamicInt8MatMul";
    private static final String CODES = ".qweight";
    private static final String SCALES = ".scales";
    private static final String TRANSPOSED = "_t";
    private static final String UNIT_SCALE = "pet.int8.unit_scale";
    private static final String ZERO_POINT = "pet.int8.weight_zero_point";
    /**
     * System property choosing how the codes are stored: {@code signed}, {@code unsigned} or {@code auto} (the
     * default: {@link #signedCodesSafe()}).
     */
    public static final String CODES_PROPERTY = "pet.quant.int8_codes";

    private IntegerLinears() {
    }

    /**
     * Lowers one weight read by {@code readers} (each a MatMul or Gemm reading it as B; see
     * {@link QuantizedLinears#quantize}, which then {@link #define}s the function); with {@code backward}, the
     * transposed codes are stored for the gradient.
     */
    static QuantizedLinears.Layer lower(Model model, ScratchFile scratch, String weight, Tensor w,
            List<QuantizedLinears.Reader> readers, boolean backward) {
        Graph g = model.graph();
        ChannelQuantizer.Quantized q = ChannelQuantizer.quantize(w, readers.get(0).kAlongColumns());
        boolean signed = signedCodes();
        List<Tensor> parts = new ArrayList<>(List.of(stored(q.transposedCodes(), signed), q.scales()));
        if (backward) {
            parts.add(stored(q.codes(), signed));
        }
        List<Tensor> stored = scratch.append(parts);
        Value codes = g.setInitializer(weight + CODES, stored.get(0));
        Value scales = g.setInitializer(weight + SCALES, stored.get(1));
        long bytes = stored.get(0).byteSize() + stored.get(1).byteSize();
        if (backward) {
            g.setInitializer(weight + CODES + TRANSPOSED, stored.get(2));
            bytes += stored.get(2).byteSize();
        }
        Value zeroPoint = g.value(ZERO_POINT);
        if (zeroPoint == null) {
            zeroPoint = g.setInitializer(ZERO_POINT, byteScalar(signed ? DataType.INT8 : DataType.UINT8,
                    signed ? 0 : 128));
        } else if ((g.initializer(ZERO_POINT).dataType() == DataType.INT8) != signed) {
            throw new OnnxException("cannot quantize '" + weight + "': the model's other int8 weights were stored "
                    + (signed ? "unsigned" : "signed") + " (" + CODES_PROPERTY + " changed in between)");
        }
        for (QuantizedLinears.Reader r : readers) {
            QuantizedLinears.replaceLinear(g, r.node(), OP, DOMAIN, List.of(r.node().input(0), codes, scales,
                    zeroPoint), List.of(), "/int8");
        }
        g.dropInitializer(weight);
        return new QuantizedLinears.Layer(weight, q.rows(), q.columns(), q.relativeError(), bytes, false, false);
    }

    /**
     * Whether the codes are stored as int8 (true) or as uint8 with zero point 128 (false): the same integers, so the
     * same results, but x86 CPUs without VNNI multiply uint8 by int8 with instructions that add pairs of products
     * in saturating 16 bits (255·127·2 > 32767), and only uint8 by uint8 is exact there; with VNNI (and on other
     * architectures) int8 weights are exact and about 1.5-2x faster. {@link #CODES_PROPERTY} overrides the choice.
     */
    static boolean signedCodes() {
        String choice = System.getProperty(CODES_PROPERTY, "auto");
        return switch (choice) {
            case "signed" -> true;
            case "unsigned" -> false;
            case "auto" -> signedCodesSafe();
            default -> throw new OnnxException(CODES_PROPERTY + " must be signed, unsigned or auto, found '" + choice
                    + "'");
        };
    }

    /**
     * True unless this is an x86 CPU not known to have VNNI: Linux's {@code /proc/cpuinfo} lists {@code avx512_vnni}
     * or {@code avx_vnni} among its flags. Elsewhere on x86 the flags are not read, and the safe answer is false.
     */
    public static boolean signedCodesSafe() {
        String arch = System.getProperty("os.arch", "");
        if (!arch.equals("amd64") && !arch.equals("x86_64") && !arch.equals("x86")) {
            return true;
        }
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("flags")).findFirst().map(l -> Arrays.asList(l.split("\\s+")))
                    .map(flags -> flags.contains("avx512_vnni") || flags.contains("avx_vnni")).orElse(false);
        } catch (IOException | UncheckedIOException e) {
            return false;
        }
    }

    /**
     * {@code model}, or, when its int8 products read int8 codes that this CPU would multiply inexactly (a model
     * exported on a CPU with VNNI, run on one without), a copy whose codes are stored as uint8 with zero point 128:
     * the same integers, so the same results. The engine calls this for every graph it compiles.
     */
    public static Model forThisCpu(Model model) {
        List<Node> signedProducts = model.graph().nodes().stream().filter(n -> isProduct(n) && n.inputCount() > 3
                && n.input(3) != null && model.graph().initializer(n.input(3).name()) != null
                && model.graph().initializer(n.input(3).name()).dataType() == DataType.INT8).toList();
        if (signedProducts.isEmpty() || signedCodes()) {
            return model;
        }
        Model copy = model.copy();
        Graph g = copy.graph();
        Set<String> converted = new HashSet<>();
        for (Node n : signedProducts) {
            for (int input : new int[] {1, 3}) {
                String name = n.input(input).name();
                Tensor t = g.initializer(name);
                if (converted.add(name) && t != null) {
                    g.setInitializer(name, input == 1 ? stored(t, false) : byteScalar(DataType.UINT8,
                            t.buffer().get(0) + 128));
                }
            }
        }
        return copy;
    }

    /** A one-byte scalar of {@code type} (INT8 or UINT8). */
    private static Tensor byteScalar(DataType type, int value) {
        return Tensor.of(type, new long[0], ByteBuffer.wrap(new byte[] {(byte) value}));
    }

    /** int8 codes as stored: unchanged, or as uint8 with 128 added. */
    private static Tensor stored(Tensor codes, boolean signed) {
        if (signed) {
            return codes;
        }
        ByteBuffer src = codes.buffer();
        ByteBuffer out = ByteBuffer.allocate(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < out.capacity(); i++) {
            out.put(i, (byte) (src.get(i) ^ 0x80));
        }
        return Tensor.of(DataType.UINT8, codes.shape(), out);
    }

    /** True for a DynamicInt8MatMul node. */
    public static boolean isProduct(Node n) {
        return n.domain().equals(DOMAIN) && n.opType().equals(OP);
    }

    /**
     * The inputs of the backward product for a forward DynamicInt8MatMul node, given its output gradient:
     * {@code dY · BScale}, the transposed codes and a unit scale. Fails when the weight has no transposed codes.
     */
    public static List<Value> backwardInputs(Node n, Value scaledGradient) {
        Graph g = n.graph();
        String codes = n.input(1).name();
        Value t = g.value(codes + TRANSPOSED);
        if (t == null || g.initializer(t.name()) == null) {
            throw new OnnxException(n.describe() + " has no transposed int8 copy '" + codes + TRANSPOSED + "' for its"
                    + " input gradient: quantize the weight with backward copies for training");
        }
        Value unit = g.value(UNIT_SCALE);
        if (unit == null) {
            unit = g.setInitializer(UNIT_SCALE, Tensor.scalar(1f));
        }
        return List.of(scaledGradient, t, unit, n.input(3));
    }

    /**
     * The inverse rewrite for exports: each forward DynamicInt8MatMul becomes a MatMul (or a Gemm with transB when
     * {@code outIn}) over Ŵ under the weight's original name. Returns the weight's name when this call made it.
     */
    static Optional<String> restore(Model model, Node n, Predicate<String> outIn) {
        Graph g = model.graph();
        String codesName = n.input(1).name();
        if (!codesName.endsWith(CODES)) {
            throw new OnnxException("cannot dequantize " + n.describe() + ": it reads '" + codesName + "', not the"
                    + " forward codes of a weight");
        }
        String weight = codesName.substring(0, codesName.length() - CODES.length());
        boolean storedOutIn = outIn.test(weight);
        boolean made = g.initializer(weight) == null;
        if (made) {
            g.setInitializer(weight, dequantized(g.initializer(codesName), g.initializer(n.input(2).name()),
                    g.initializer(n.input(3).name()), storedOutIn));
        }
        for (Value v : QuantizedLinears.restoreLinear(g, n, weight, storedOutIn)) {
            QuantizedLinears.dropIfUnread(g, v.name());
        }
        QuantizedLinears.dropIfUnread(g, codesName + TRANSPOSED);
        return made ? Optional.of(weight) : Optional.empty();
    }

    /** Drops the function definition once no node calls it. */
    static void undefineIfUnused(Model model) {
        if (model.graph().nodes().stream().anyMatch(IntegerLinears::isProduct)) {
            return;
        }
        model.opsets().remove(DOMAIN);
        if (model.residual() instanceof ModelProto r) {
            ModelProto.Builder b = r.toBuilder().clearFunctions();
            r.getFunctionsList().stream().filter(f -> !(f.getDomain().equals(DOMAIN) && f.getName().equals(OP)))
                    .forEach(b::addFunctions);
            model.setResidual(b.build());
        }
        QuantizedLinears.dropIfUnread(model.graph(), UNIT_SCALE);
        QuantizedLinears.dropIfUnread(model.graph(), ZERO_POINT);
    }

    /**
     * Ŵ from the stored [K, N] codes (int8, or uint8 with {@code zeroPoint} 128) and [N] scales, as float in the
     * weight's layout.
     */
    static Tensor dequantized(Tensor codesKn, Tensor scales, Tensor zeroPoint, boolean outIn) {
        if (codesKn == null || scales == null || zeroPoint == null || codesKn.rank() != 2
                || zeroPoint.dataType() != codesKn.dataType() || zeroPoint.elementCount() != 1
                || scales.elementCount() != codesKn.dim(1)) {
            throw new OnnxException("expected int8 or uint8 codes [K, N], float scales [N] and a zero point of the"
                    + " codes' type as initializers, found " + codesKn + ", " + scales + " and " + zeroPoint);
        }
        boolean signed = codesKn.dataType() == DataType.INT8;
        int zp = signed ? zeroPoint.buffer().get(0) : Byte.toUnsignedInt(zeroPoint.buffer().get(0));
        int k = Math.toIntExact(codesKn.dim(0));
        int n = Math.toIntExact(codesKn.dim(1));
        ByteBuffer c = codesKn.buffer();
        float[] scale = scales.toFloatArray();
        float[] nk = new float[Math.multiplyExact(n, k)];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < n; j++) {
                byte code = c.get(i * n + j);
                nk[j * k + i] = ((signed ? code : Byte.toUnsignedInt(code)) - zp) * scale[j];
            }
        }
        return QuantizedLinears.layout(nk, n, k, outIn);
    }

    /**
     * Adds the function's definition and opsets to {@code model}, or renews a definition written for another opset.
     * ONNX Runtime resolves a function body's ops at the model's own opset (whatever the function imports), and
     * ReduceMax's axes moved from an attribute to an input at opset 18, so the body is written for the model's
     * opset; {@link OpsetUpgrade} calls this again when it raises the opset. (TopK, unchanged since opset 11, would
     * fit every opset, but ONNX Runtime 1.29's TopK divides by zero on an empty input, which a chunked head makes.)
     */
    static void define(Model model) {
        model.opsets().put(DOMAIN, 1L);
        model.opsets().put(QuantizedLinears.DOMAIN, 1L);
        long opset = model.opset();
        ModelProto r = model.residual() instanceof ModelProto p ? p : ModelProto.getDefaultInstance();
        ModelProto.Builder b = r.toBuilder().clearFunctions();
        boolean current = false;
        for (FunctionProto f : r.getFunctionsList()) {
            if (!(f.getDomain().equals(DOMAIN) && f.getName().equals(OP))) {
                b.addFunctions(f);
            } else if (bodyOpset(f) == opset) {
                b.addFunctions(f);
                current = true;
            }
        }
        if (!current) {
            model.setResidual(b.addFunctions(function(opset)).build());
        }
    }

    /** Renews the definition after {@code model}'s opset changed, when the model calls the function. */
    static void redefineIfUsed(Model model) {
        if (model.graph().nodes().stream().anyMatch(IntegerLinears::isProduct)) {
            define(model);
        }
    }

    private static long bodyOpset(FunctionProto f) {
        return f.getOpsetImportList().stream().filter(o -> o.getDomain().isEmpty()).mapToLong(
                OperatorSetIdProto::getVersion).findFirst().orElse(-1);
    }

    private static FunctionProto function(long opset) {
        FunctionProto.Builder f = FunctionProto.newBuilder().setName(OP).setDomain(DOMAIN)
                .addInput("X").addInput("B").addInput("BScale").addInput("BZeroPoint").addOutput("Y")
                .setDocString("X · dequantize(B, BScale, BZeroPoint) with X quantized to int8 per row"
                        + " (straight-through in training); B int8 or uint8 [K, N], BScale float [N] or a scalar,"
                        + " BZeroPoint a scalar of B's type")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(QuantizedLinears.DOMAIN).setVersion(1));
        f.addNode(constant("inv127", scalar(DataType.FLOAT, 1f / 127)));
        f.addNode(constant("tiny", scalar(DataType.FLOAT, 1e-30f)));
        f.addNode(constant("one", scalar(DataType.FLOAT, 1f)));
        f.addNode(constant("zero_point", scalar(DataType.UINT8, 128)));
        f.addNode(node("Abs", "", List.of("X"), "AbsX"));
        NodeProto.Builder rowMax = node("ReduceMax", "", List.of("AbsX"), "ReducedMax").toBuilder()
                .addAttribute(AttributeProto.newBuilder().setName("keepdims").setType(AttributeProto.AttributeType.INT)
                        .setI(1));
        if (opset >= 18) {
            f.addNode(constant("last_axis", int64s(-1)));
            rowMax.addInput("last_axis");
        } else {
            rowMax.addAttribute(AttributeProto.newBuilder().setName("axes").setType(AttributeProto.AttributeType.INTS)
                    .addInts(-1));
        }
        f.addNode(rowMax);
        // [..., 1] spelled out: on an empty X (a chunk of a chunked head can be empty) ONNX Runtime's ReduceMax
        // returns X's own shape, which the product's shape would not broadcast with.
        f.addNode(constant("zero", int64s(0)));
        f.addNode(constant("minus_one", int64s(-1)));
        f.addNode(constant("ones", int64s(1)));
        f.addNode(node("Shape", "", List.of("X"), "XShape"));
        f.addNode(node("Slice", "", List.of("XShape", "zero", "minus_one"), "Leading"));
        f.addNode(NodeProto.newBuilder().setOpType("Concat").setName("RowShape").addInput("Leading").addInput("ones")
                .addOutput("RowShape").addAttribute(AttributeProto.newBuilder().setName("axis")
                        .setType(AttributeProto.AttributeType.INT).setI(0)));
        f.addNode(node("Reshape", "", List.of("ReducedMax", "RowShape"), "RowMax"));
        f.addNode(node("Mul", "", List.of("RowMax", "inv127"), "RowStep"));
        f.addNode(node("Max", "", List.of("RowStep", "tiny"), "S"));
        f.addNode(node("Div", "", List.of("X", "S"), "XS"));
        f.addNode(node("QuantizeLinear", "", List.of("XS", "one", "zero_point"), "XQ"));
        f.addNode(node("MatMulIntegerToFloat", QuantizedLinears.DOMAIN,
                List.of("XQ", "B", "one", "BScale", "zero_point", "BZeroPoint"), "Y0"));
        f.addNode(node("Mul", "", List.of("Y0", "S"), "Y"));
        return f.build();
    }

    private static NodeProto node(String op, String domain, List<String> inputs, String output) {
        return NodeProto.newBuilder().setOpType(op).setDomain(domain).setName(output).addAllInput(inputs)
                .addOutput(output).build();
    }

    private static NodeProto constant(String output, TensorProto value) {
        return NodeProto.newBuilder().setOpType("Constant").setName(output).addOutput(output)
                .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
                        .setT(value))
                .build();
    }

    /** int64 [1] holding {@code value}. */
    private static TensorProto int64s(long value) {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, value);
        return TensorProto.newBuilder().setDataType(DataType.INT64.onnxCode()).addDims(1)
                .setRawData(ByteString.copyFrom(b.array())).build();
    }

    private static TensorProto scalar(DataType type, float value) {
        ByteBuffer b = ByteBuffer.allocate(type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        if (type == DataType.FLOAT) {
            b.putFloat(0, value);
        } else {
            b.put(0, (byte) value);
        }
        return TensorProto.newBuilder().setDataType(type.onnxCode()).setRawData(ByteString.copyFrom(b.array()))
                .build();
    }
}
