package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * What a {@link GradientRule} sees while the backward graph is built: the builder, the gradients of node outputs,
 * which values need a gradient, and helpers that keep rules short (broadcast reduction, shapes, constants).
 * Contributions to one value from several consumers are summed once, with a single {@code Sum} node, when the
 * value's gradient is first read.
 */
public final class GradientContext {
    private final GraphBuilder b;
    private final Set<Value> onPath;
    private final Map<Value, List<Value>> contributions = new HashMap<>();
    private final Map<Value, List<Scatter>> scatters = new HashMap<>();
    private final Map<Value, Value> originals = new HashMap<>();
    private final Map<Value, Value> summed = new HashMap<>();
    private final Map<Value, Value> shapes = new HashMap<>();
    private final Map<String, Value> constants = new HashMap<>();

    GradientContext(GraphBuilder b, Set<Value> onPath) {
        this.b = b;
        this.onPath = onPath;
    }

    public GraphBuilder builder() {
        return b;
    }

    public int opset() {
        return b.opset();
    }

    /**
     * A gradient that is zero except for {@code updates} at {@code indices} along {@code axis}
     * ({@code ScatterElements} semantics): the gradient of a GatherElements input, kept unmaterialised so that it
     * can be added into a dense gradient, or consumed by a rule that needs only the updates (LogSoftmax), without
     * a zero-filled tensor of the input's size.
     */
    public record Scatter(Value indices, Value updates, long axis) {
    }

    /** True when {@code v} lies downstream of a trainable and upstream of the loss, so it needs a gradient. */
    public boolean needs(Value v) {
        return v != null && onPath.contains(original(v));
    }

    /**
     * Makes {@code copy} (a value of a recomputed node) stand for {@code original} in gradient bookkeeping: rules
     * applied to the recomputed node read and add the original's gradients.
     */
    void alias(Value copy, Value original) {
        originals.put(copy, original);
    }

    private Value original(Value v) {
        return originals.getOrDefault(v, v);
    }

    /** The gradient of the loss with respect to {@code v}, or null when nothing contributed (a zero gradient). */
    public Value grad(Value v) {
        if (v == null) {
            return null;
        }
        v = original(v);
        if (summed.containsKey(v)) {
            Value done = summed.get(v);
            if (done == null) {
                throw new OnnxException("internal: gradient of '" + v.name() + "' was taken in sparse form");
            }
            return done;
        }
        List<Value> parts = contributions.get(v);
        List<Scatter> sparse = scatters.get(v);
        if ((parts == null || parts.isEmpty()) && sparse == null) {
            return null;
        }
        Value g = parts == null || parts.isEmpty() ? zeros(v) : parts.size() == 1 ? parts.get(0) : b.sum(parts);
        for (Scatter s : sparse == null ? List.<Scatter>of() : sparse) {
            g = scatterAdd(g, s);
        }
        summed.put(v, g);
        return g;
    }

    /**
     * The gradient of {@code v} when it is exactly one {@link Scatter} (no dense contribution), else null. Reading
     * it settles the gradient like {@link #grad(Value)}: no contribution may follow.
     */
    public Scatter scatterOnly(Value v) {
        v = original(v);
        List<Value> parts = contributions.get(v);
        List<Scatter> sparse = scatters.get(v);
        if (summed.containsKey(v) || parts != null && !parts.isEmpty() || sparse == null || sparse.size() != 1) {
            return null;
        }
        summed.put(v, null);
        return sparse.get(0);
    }

    /** {@code base} with {@code s}'s updates added at its indices. */
    public Value scatterAdd(Value base, Scatter s) {
        return b.op("ScatterElements", List.of(base, s.indices(), s.updates()), Attribute.of("axis", s.axis()),
                Attribute.of("reduction", "add"));
    }

    /**
     * Whether anything contributed to {@code v}'s gradient (dense or sparse), without settling it: a node none of
     * whose outputs has one (a sigmoid whose only consumer, SiLU's product, differentiated both at once) passes
     * nothing back.
     */
    boolean hasGradient(Value v) {
        v = original(v);
        if (summed.containsKey(v)) {
            return true;
        }
        List<Value> parts = contributions.get(v);
        List<Scatter> sparse = scatters.get(v);
        return parts != null && !parts.isEmpty() || sparse != null && !sparse.isEmpty();
    }

    /** The gradient of output {@code i} of {@code n}, or null. */
    public Value grad(Node n, int i) {
        return grad(n.output(i));
    }

    /** Adds a gradient contribution to {@code input}, building it only when the input needs one. */
    public void propagate(Value input, Supplier<Value> gradient) {
        if (!needs(input)) {
            return;
        }
        input = open(input);
        Value g = gradient.get();
        refineType(g, input);
        contributions.computeIfAbsent(input, k -> new ArrayList<>()).add(g);
    }

    /** Adds a sparse contribution to {@code input} (see {@link Scatter}), built only when the input needs one. */
    public void propagateScatter(Value input, Value indices, long axis, Supplier<Value> updates) {
        if (!needs(input)) {
            return;
        }
        input = open(input);
        scatters.computeIfAbsent(input, k -> new ArrayList<>()).add(new Scatter(indices, updates.get(), axis));
    }

    private Value open(Value input) {
        Value v = original(input);
        if (summed.containsKey(v)) {
            throw new OnnxException("internal: gradient of '" + v.name() + "' was read before all its"
                    + " consumers contributed");
        }
        return v;
    }

    /**
     * A gradient has its input's type; where inference knew less (shapes read from Shape ops), record it, so that
     * later rules can decide broadcasting and reshapes statically.
     */
    private static void refineType(Value g, Value input) {
        TensorType gt = g.type();
        TensorType it = input.type();
        if (!it.hasRank() || gt.isStatic() || (gt.hasRank() && gt.rank() != it.rank())) {
            return;
        }
        List<Dim> dims = new ArrayList<>(it.dims());
        if (gt.hasRank()) {
            for (int i = 0; i < dims.size(); i++) {
                if (!dims.get(i).isFixed() && gt.dims().get(i).isFixed()) {
                    dims.set(i, gt.dims().get(i));
                }
            }
        }
        g.setType(new TensorType(gt.dataType() != null ? gt.dataType() : it.dataType(), dims));
    }

    void seed(Value loss, Value ones) {
        contributions.computeIfAbsent(loss, k -> new ArrayList<>()).add(ones);
    }

    // ---- constants and shapes --------------------------------------------------------------------------------

    /** A scalar constant of the given floating type (shared within this backward pass). */
    public Value scalar(DataType type, double v) {
        return constants.computeIfAbsent(type + ":" + v, k -> b.constant(type, v));
    }

    /** A scalar constant of {@code like}'s element type. */
    public Value scalarLike(Value like, double v) {
        return scalar(floatType(like), v);
    }

    /** A 1-D int64 constant (shared within this backward pass). */
    public Value ints(long... v) {
        return constants.computeIfAbsent("i64" + Arrays.toString(v), k -> b.ints(v));
    }

    /** The shape of {@code v} as a 1-D int64 value: a constant when static, else a {@code Shape} node. */
    public Value shapeOf(Value v) {
        return shapes.computeIfAbsent(v, k -> k.type().isStatic() ? ints(k.type().shape()) : b.shape(k));
    }

    /** Dimension {@code axis} of {@code v} as a 1-D int64 value of one element. */
    public Value dimOf(Value v, int axis) {
        TensorType t = v.type();
        if (t.hasRank() && t.dims().get(axis).isFixed()) {
            return ints(t.dims().get(axis).value());
        }
        return b.shape(v, axis, axis + 1);
    }

    /** Zeros with the shape and element type of {@code like}. */
    public Value zeros(Value like) {
        return zeros(shapeOf(like), floatType(like));
    }

    public Value zeros(Value shape, DataType type) {
        return b.constantOfShape(shape, Tensor.fromDoubles(type, new double[] {0}, 1));
    }

    /** Element type of a floating value; fails naming it otherwise. */
    public static DataType floatType(Value v) {
        DataType t = v.type().dataType();
        if (t == null || !t.isFloatingPoint()) {
            throw new OnnxException("expected a floating-point value for gradients, '" + v.name() + "' is " + t);
        }
        return t;
    }

    /** Rank of a value; fails naming it when unknown. */
    public static int rank(Value v) {
        if (!v.type().hasRank()) {
            throw new OnnxException("the gradient rule needs the rank of '" + v.name() + "', which is unknown");
        }
        return v.type().rank();
    }

    /** Axis normalised to [0, rank). */
    public static int axis(long axis, int rank) {
        int a = (int) (axis < 0 ? axis + rank : axis);
        if (a < 0 || a >= Math.max(rank, 1)) {
            throw new OnnxException("axis " + axis + " is out of range for rank " + rank);
        }
        return a;
    }

    // ---- broadcasting ----------------------------------------------------------------------------------------

    /**
     * Reduces {@code grad} (shaped like a broadcast result of type {@code outType}) to the shape of
     * {@code input}: sums over broadcast axes and drops leading ones. Static when the axes follow from the known
     * dimensions, otherwise computed in the graph from {@code Shape} ops.
     */
    public Value unbroadcast(Value grad, Value input, TensorType outType) {
        TensorType in = input.type();
        if (!in.hasRank() || !(outType.hasRank() || grad.type().hasRank())) {
            return unbroadcastAnyRank(grad, input);
        }
        int ri = in.rank();
        if (outType.hasRank() && outType.rank() >= ri) {
            int r = outType.rank();
            List<Long> axes = new ArrayList<>();
            boolean decided = true;
            for (int i = 0; i < r && decided; i++) {
                if (i < r - ri) {
                    axes.add((long) i);
                    continue;
                }
                Dim di = in.dims().get(i - (r - ri));
                Dim dout = outType.dims().get(i);
                boolean inOne = di.isFixed() && di.value() == 1;
                boolean outOne = dout.isFixed() && dout.value() == 1;
                if (inOne) {
                    if (!outOne) {
                        axes.add((long) i);
                    }
                } else if (di.isFixed() || outOne || (di.isSymbolic() && di.equals(dout))) {
                    // equal sizes: a fixed size other than 1 must match; an output of 1 forces an input of 1
                    continue;
                } else {
                    decided = false;
                }
            }
            if (decided) {
                if (axes.isEmpty()) {
                    return grad;
                }
                long[] ax = axes.stream().mapToLong(Long::longValue).toArray();
                Value red = b.reduceSum(grad, ax, true);
                if (r > ri) {
                    long[] lead = new long[r - ri];
                    for (int i = 0; i < lead.length; i++) {
                        lead[i] = i;
                    }
                    red = b.op("Squeeze", List.of(red, ints(lead)));
                }
                return red;
            }
        }
        int r = outType.hasRank() ? outType.rank() : rank(grad);
        Value inShape = shapeOf(input);
        Value padded = inShape;
        if (r > ri) {
            long[] ones = new long[r - ri];
            Arrays.fill(ones, 1);
            padded = b.concat(List.of(ints(ones), inShape), 0);
        }
        Value axes = b.reshape(b.op("NonZero", List.of(b.equal(padded, ints(1)))), ints(-1));
        Value red = b.op("ReduceSum", List.of(grad, axes), Attribute.of("keepdims", 1L),
                Attribute.of("noop_with_empty_axes", 1L));
        return b.reshape(red, inShape);
    }

    /** The broadcast reduction with ranks computed in the graph too. */
    private Value unbroadcastAnyRank(Value grad, Value input) {
        Value inShape = shapeOf(input);
        Value extra = b.sub(b.size(b.shape(grad)), b.size(inShape));
        Value ones = b.constantOfShape(b.reshape(extra, ints(1)), Tensor.ofLongs(new long[] {1}, 1));
        Value padded = b.concat(List.of(ones, inShape), 0);
        Value axes = b.reshape(b.op("NonZero", List.of(b.equal(padded, ints(1)))), ints(-1));
        Value red = b.op("ReduceSum", List.of(grad, axes), Attribute.of("keepdims", 1L),
                Attribute.of("noop_with_empty_axes", 1L));
        return b.reshape(red, inShape);
    }

    /** Reshapes {@code grad} to the shape of {@code like} (a no-op when the types already agree). */
    public Value reshapeLike(Value grad, Value like) {
        TensorType g = grad.type();
        TensorType l = like.type();
        if (g.hasRank() && l.hasRank() && known(l) && g.dims().equals(l.dims())) {
            return grad;
        }
        long[] target = constantTarget(g, l);
        if (target != null) {
            return b.reshape(grad, ints(target));
        }
        return reshapeTo(grad, shapeOf(like));
    }

    /**
     * Reshapes {@code x} to {@code shape}, a shape read from a tensor (Shape op or static type): a 0 in it is an
     * empty dimension, not Reshape's "copy this dimension" (allowzero, opset 14), so empty tensors (a loss chunk of
     * no rows) keep their shape.
     */
    public Value reshapeTo(Value x, Value shape) {
        if (b.opset() < 14) {
            return b.reshape(x, shape);
        }
        return b.op("Reshape", List.of(x, shape), Attribute.of("allowzero", 1L));
    }

    private static boolean known(TensorType t) {
        return t.dims().stream().allMatch(d -> d.isFixed() || d.isSymbolic());
    }

    /**
     * A constant Reshape target giving {@code like}'s shape, or null: fixed sizes as they are, a symbolic size that
     * {@code grad} has at the same axis as 0 (Reshape's "copy this dimension"), and at most one other as -1.
     */
    private static long[] constantTarget(TensorType g, TensorType l) {
        if (!l.hasRank()) {
            return null;
        }
        long[] target = new long[l.rank()];
        boolean inferred = false;
        for (int i = 0; i < target.length; i++) {
            Dim d = l.dims().get(i);
            if (d.isFixed()) {
                if (d.value() == 0) {
                    return null;
                }
                target[i] = d.value();
            } else if (d.isSymbolic() && g.hasRank() && i < g.rank() && d.equals(g.dims().get(i))) {
                target[i] = 0;
            } else if (!inferred) {
                target[i] = -1;
                inferred = true;
            } else {
                return null;
            }
        }
        return target;
    }
}
