package dev.pet.onnx.build;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A typed, opset-aware vocabulary for building ONNX graphs, so that model and PET code reads like the math:
 * {@code b.add(b.matMul(x, w), bias)}. Every node gets a unique name under the current {@link #scope}, its outputs
 * get types from {@link ShapeInference}, and ops whose signature changed across opsets (axes as attribute or input,
 * Split's {@code num_outputs}) are emitted in the form the target opset expects.
 */
public final class GraphBuilder {
    /** The default ONNX operator set emitted by PET Runtime. */
    public static final int DEFAULT_OPSET = 17;
    /**
     * The operator set of training graphs: the first with a single {@code Gelu} node. Composed at 17, GELU leaves four
     * intermediates of the MLP's width per block saved for the backward pass; as one node only its input is saved
     * (0.28 GiB less at GPT-2 small, B = 4, T = 128; docs/BENCHMARKS.md).
     */
    public static final int TRAINING_OPSET = 20;

    private final Graph graph;
    private final int opset;
    private String scope = "";

    public GraphBuilder(Graph graph, int opset) {
        this.graph = Objects.requireNonNull(graph, "graph");
        if (opset < 13 || opset > 21) {
            throw new OnnxException("opset " + opset + " is outside the supported range 13-21");
        }
        this.opset = opset;
    }

    public GraphBuilder(Graph graph) {
        this(graph, DEFAULT_OPSET);
    }

    public Graph graph() {
        return graph;
    }

    public int opset() {
        return opset;
    }

    /** The prefix given to node and value names (e.g. {@code /transformer/h.0/attn}); "" for none. */
    public String scope() {
        return scope;
    }

    /** Sets the naming scope and returns the previous one, so callers can restore it. */
    public String setScope(String newScope) {
        String old = scope;
        scope = newScope == null ? "" : newScope;
        return old;
    }

    // ---- generic ---------------------------------------------------------------------------------------------

    /** Adds a one-output node of the default domain. */
    public Value op(String opType, List<Value> inputs, Attribute... attrs) {
        return node(opType, "", inputs, 1, attrs).output(0);
    }

    /** Adds a node with {@code outputCount} outputs, named under the current scope, with inferred types. */
    public Node node(String opType, String domain, List<Value> inputs, int outputCount, Attribute... attrs) {
        String base = scope.isEmpty() ? opType : scope + "/" + opType;
        String nodeName = uniqueNodeName(base);
        List<String> outs = new ArrayList<>(outputCount);
        for (int i = 0; i < outputCount; i++) {
            outs.add(graph.uniqueName(nodeName + "_output_" + i));
        }
        Node n = graph.addNode(opType, domain, nodeName, inputs, outs, Arrays.asList(attrs));
        ShapeInference.infer(n, opset);
        return n;
    }

    private String uniqueNodeName(String base) {
        return graph.uniqueNodeName(base);
    }

    /** A graph input. */
    public Value input(String name, TensorType type) {
        return graph.addInput(name, type);
    }

    /** Marks a value as a graph output, renaming it to {@code name} when given. */
    public Value output(Value v, String name) {
        if (name != null && !name.equals(v.name())) {
            if (v.producer() == null || v.isGraphOutput()) {
                v = identity(v);
            }
            v.rename(name);
        }
        graph.addOutput(v);
        return v;
    }

    /** A named constant tensor stored as an initializer. */
    public Value initializer(String name, Tensor t) {
        return graph.setInitializer(name, t);
    }

    /** An anonymous constant; stored as an initializer so large data stays out of node attributes. */
    public Value constant(Tensor t) {
        return graph.setInitializer(graph.uniqueName(scope.isEmpty() ? "const" : scope + "/const"), t);
    }

    public Value constant(float v) {
        return constant(Tensor.scalar(v));
    }

    /** A scalar constant of the given floating type. */
    public Value constant(DataType type, double v) {
        return constant(Tensor.fromDoubles(type, new double[] {v}));
    }

    /** A 1-D int64 constant, the form ONNX uses for shapes, axes and indices. */
    public Value ints(long... v) {
        return constant(Tensor.ofLongs(v, v.length));
    }

    /** A scalar int64 constant. */
    public Value scalarInt(long v) {
        return constant(Tensor.ofLongs(new long[] {v}));
    }

    // ---- elementwise -----------------------------------------------------------------------------------------

    public Value add(Value a, Value b) {
        return op("Add", List.of(a, b));
    }

    public Value sub(Value a, Value b) {
        return op("Sub", List.of(a, b));
    }

    public Value mul(Value a, Value b) {
        return op("Mul", List.of(a, b));
    }

    public Value div(Value a, Value b) {
        return op("Div", List.of(a, b));
    }

    public Value pow(Value a, Value b) {
        return op("Pow", List.of(a, b));
    }

    public Value neg(Value a) {
        return op("Neg", List.of(a));
    }

    public Value sqrt(Value a) {
        return op("Sqrt", List.of(a));
    }

    public Value reciprocal(Value a) {
        return op("Reciprocal", List.of(a));
    }

    public Value exp(Value a) {
        return op("Exp", List.of(a));
    }

    public Value log(Value a) {
        return op("Log", List.of(a));
    }

    public Value tanh(Value a) {
        return op("Tanh", List.of(a));
    }

    public Value erf(Value a) {
        return op("Erf", List.of(a));
    }

    public Value sigmoid(Value a) {
        return op("Sigmoid", List.of(a));
    }

    public Value relu(Value a) {
        return op("Relu", List.of(a));
    }

    public Value abs(Value a) {
        return op("Abs", List.of(a));
    }

    public Value sign(Value a) {
        return op("Sign", List.of(a));
    }

    public Value max(Value a, Value b) {
        return op("Max", List.of(a, b));
    }

    public Value min(Value a, Value b) {
        return op("Min", List.of(a, b));
    }

    public Value sum(List<Value> terms) {
        return terms.size() == 1 ? terms.get(0) : op("Sum", terms);
    }

    public Value equal(Value a, Value b) {
        return op("Equal", List.of(a, b));
    }

    public Value less(Value a, Value b) {
        return op("Less", List.of(a, b));
    }

    public Value greater(Value a, Value b) {
        return op("Greater", List.of(a, b));
    }

    public Value not(Value a) {
        return op("Not", List.of(a));
    }

    public Value and(Value a, Value b) {
        return op("And", List.of(a, b));
    }

    public Value where(Value condition, Value ifTrue, Value ifFalse) {
        return op("Where", List.of(condition, ifTrue, ifFalse));
    }

    public Value cast(Value a, DataType to) {
        return op("Cast", List.of(a), Attribute.of("to", (long) to.onnxCode()));
    }

    public Value identity(Value a) {
        return op("Identity", List.of(a));
    }

    /**
     * GELU. Opset 20 has a Gelu op; below that it is decomposed: {@code approximate="tanh"} is GPT-2's
     * {@code gelu_new}, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); "none" is 0.5·x·(1 + erf(x/√2)).
     */
    public Value gelu(Value x, String approximate) {
        if (!approximate.equals("tanh") && !approximate.equals("none")) {
            throw new OnnxException("Gelu approximate must be 'none' or 'tanh', got '" + approximate + "'");
        }
        if (opset >= 20) {
            return op("Gelu", List.of(x), Attribute.of("approximate", approximate));
        }
        DataType t = elementType(x);
        Value half = constant(t, 0.5);
        Value one = constant(t, 1.0);
        Value inner;
        if (approximate.equals("tanh")) {
            Value cube = mul(mul(x, x), x);
            Value poly = add(x, mul(constant(t, 0.044715), cube));
            inner = tanh(mul(constant(t, Math.sqrt(2.0 / Math.PI)), poly));
        } else {
            inner = erf(mul(x, constant(t, 1.0 / Math.sqrt(2.0))));
        }
        return mul(mul(half, x), add(one, inner));
    }

    // ---- linear algebra --------------------------------------------------------------------------------------

    public Value matMul(Value a, Value b) {
        return op("MatMul", List.of(a, b));
    }

    /** Gemm: alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A. {@code c} may be null. */
    public Value gemm(Value a, Value b, Value c, float alpha, float beta, boolean transA, boolean transB) {
        List<Value> in = new ArrayList<>(List.of(a, b));
        if (c != null) {
            in.add(c);
        }
        return op("Gemm", in, Attribute.of("alpha", alpha), Attribute.of("beta", beta),
                Attribute.of("transA", transA ? 1L : 0L), Attribute.of("transB", transB ? 1L : 0L));
    }

    // ---- normalisation and activations over an axis ----------------------------------------------------------

    public Value softmax(Value x, long axis) {
        return op("Softmax", List.of(x), Attribute.of("axis", axis));
    }

    public Value logSoftmax(Value x, long axis) {
        return op("LogSoftmax", List.of(x), Attribute.of("axis", axis));
    }

    /** LayerNormalization over the last axis; returns the node so Mean/InvStdDev outputs can be used. */
    public Node layerNormNode(Value x, Value scale, Value bias, float epsilon) {
        List<Value> in = new ArrayList<>(List.of(x, scale));
        if (bias != null) {
            in.add(bias);
        }
        return node("LayerNormalization", "", in, 1, Attribute.of("axis", -1L), Attribute.of("epsilon", epsilon));
    }

    public Value layerNorm(Value x, Value scale, Value bias, float epsilon) {
        return layerNormNode(x, scale, bias, epsilon).output(0);
    }

    // ---- reductions ------------------------------------------------------------------------------------------

    public Value reduceMean(Value x, long[] axes, boolean keepDims) {
        return reduce("ReduceMean", 18, x, axes, keepDims);
    }

    public Value reduceSum(Value x, long[] axes, boolean keepDims) {
        return reduce("ReduceSum", 13, x, axes, keepDims);
    }

    /** Σx² over {@code axes}, without a squared copy of x. */
    public Value reduceSumSquare(Value x, long[] axes, boolean keepDims) {
        return reduce("ReduceSumSquare", 18, x, axes, keepDims);
    }

    public Value reduceMax(Value x, long[] axes, boolean keepDims) {
        return reduce("ReduceMax", 18, x, axes, keepDims);
    }

    /** log(Σ exp(x)) over {@code axes}, computed by one op without an exponentiated copy of x. */
    public Value reduceLogSumExp(Value x, long[] axes, boolean keepDims) {
        return reduce("ReduceLogSumExp", 18, x, axes, keepDims);
    }

    /** Product of all elements, as a scalar (used for element counts of shapes). */
    public Value reduceProd(Value x) {
        return op("ReduceProd", List.of(x), Attribute.of("keepdims", 0L));
    }

    /** Reductions take axes as an input from {@code axesAsInputSince}, as an attribute before. */
    private Value reduce(String opType, int axesAsInputSince, Value x, long[] axes, boolean keepDims) {
        Attribute keep = Attribute.of("keepdims", keepDims ? 1L : 0L);
        if (opset >= axesAsInputSince) {
            return op(opType, List.of(x, ints(axes)), keep);
        }
        return op(opType, List.of(x), Attribute.of("axes", axes), keep);
    }

    // ---- shape -----------------------------------------------------------------------------------------------

    public Value reshape(Value x, long... shape) {
        return op("Reshape", List.of(x, ints(shape)));
    }

    public Value reshape(Value x, Value shape) {
        return op("Reshape", List.of(x, shape));
    }

    public Value flatten(Value x, long axis) {
        return op("Flatten", List.of(x), Attribute.of("axis", axis));
    }

    public Value transpose(Value x, long... perm) {
        return op("Transpose", List.of(x), Attribute.of("perm", perm));
    }

    public Value unsqueeze(Value x, long... axes) {
        return op("Unsqueeze", List.of(x, ints(axes)));
    }

    public Value squeeze(Value x, long... axes) {
        return op("Squeeze", List.of(x, ints(axes)));
    }

    public Value concat(List<Value> parts, long axis) {
        return op("Concat", parts, Attribute.of("axis", axis));
    }

    /** Split along {@code axis} into pieces of the given sizes. */
    public List<Value> split(Value x, long axis, long... sizes) {
        Node n = node("Split", "", List.of(x, ints(sizes)), sizes.length, Attribute.of("axis", axis));
        return n.outputs();
    }

    public Value slice(Value x, long[] starts, long[] ends, long[] axes, long[] steps) {
        List<Value> in = new ArrayList<>(List.of(x, ints(starts), ints(ends)));
        if (axes != null) {
            in.add(ints(axes));
        }
        if (steps != null) {
            if (axes == null) {
                throw new OnnxException("Slice steps need axes");
            }
            in.add(ints(steps));
        }
        return op("Slice", in);
    }

    public Value slice(Value x, Value starts, Value ends, Value axes, Value steps) {
        List<Value> in = new ArrayList<>(List.of(x, starts, ends));
        in.add(axes);
        in.add(steps);
        while (in.get(in.size() - 1) == null) {
            in.remove(in.size() - 1);
        }
        return op("Slice", in);
    }

    public Value gather(Value data, Value indices, long axis) {
        return op("Gather", List.of(data, indices), Attribute.of("axis", axis));
    }

    public Value gatherElements(Value data, Value indices, long axis) {
        return op("GatherElements", List.of(data, indices), Attribute.of("axis", axis));
    }

    public Value expand(Value x, Value shape) {
        return op("Expand", List.of(x, shape));
    }

    public Value shape(Value x) {
        return op("Shape", List.of(x));
    }

    public Value shape(Value x, long start, long end) {
        return op("Shape", List.of(x), Attribute.of("start", start), Attribute.of("end", end));
    }

    public Value size(Value x) {
        return op("Size", List.of(x));
    }

    public Value constantOfShape(Value shape, Tensor value) {
        return op("ConstantOfShape", List.of(shape), Attribute.of("value", value));
    }

    public Value range(Value start, Value limit, Value delta) {
        return op("Range", List.of(start, limit, delta));
    }

    /** Trilu: the lower ({@code upper=false}) or upper triangle, shifted by the diagonal offset {@code k}. */
    public Value trilu(Value x, Value k, boolean upper) {
        List<Value> in = new ArrayList<>(List.of(x));
        if (k != null) {
            in.add(k);
        }
        return op("Trilu", in, Attribute.of("upper", upper ? 1L : 0L));
    }

    // ---- training ops ----------------------------------------------------------------------------------------

    /**
     * Dropout in training mode with a given ratio. Returns the node: output 0 is the result, output 1 the mask.
     * ONNX Runtime draws the mask from its own RNG; reproducible training builds masks from a seeded input.
     */
    public Node dropout(Value x, Value ratio, Value trainingMode) {
        List<Value> in = new ArrayList<>(List.of(x));
        in.add(ratio);
        in.add(trainingMode);
        return node("Dropout", "", in, 2);
    }

    /**
     * SoftmaxCrossEntropyLoss over class axis 1 ({@code scores} [N, C, ...], {@code labels} [N, ...]).
     * {@code reduction} is "mean", "sum" or "none"; {@code ignoreIndex} null for none.
     */
    public Node softmaxCrossEntropy(Value scores, Value labels, String reduction, Long ignoreIndex) {
        List<Attribute> attrs = new ArrayList<>();
        attrs.add(Attribute.of("reduction", reduction));
        if (ignoreIndex != null) {
            attrs.add(Attribute.of("ignore_index", ignoreIndex));
        }
        return node("SoftmaxCrossEntropyLoss", "", List.of(scores, labels), 2, attrs.toArray(Attribute[]::new));
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    /** The element type of a value; fails when inference could not determine it. */
    public static DataType elementType(Value v) {
        DataType t = v.type().dataType();
        if (t == null) {
            throw new OnnxException("element type of '" + v.name() + "' is unknown");
        }
        return t;
    }
}
