package dev.pet.api.onnximport;

import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Evaluates the small subgraph that computes an attention mask, in float64 on the JVM, for given graph inputs (a
 * few token ids, an all-ones padding mask, an empty or short cache): the shape, index, comparison and elementwise
 * ops torch and Optimum build masks from ({@code Shape}, {@code Range}, {@code Trilu}, {@code Where}, {@code Slice}
 * of a constant triangle, comparisons of position ranges, ...). A value that needs any other op (a MatMul of
 * activations) is not a mask: evaluation stops with {@link Unsupported} naming the node.
 */
final class MaskProbe {
    /** The mask depends on an op the probe does not evaluate. */
    static final class Unsupported extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Unsupported(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * A tensor as float64 values with its element type (integers and booleans are exact in a double). An opaque
     * tensor depends on activations (a MatMul of the hidden states): only its shape is known, and its data, when an
     * op needs some, is zeros.
     */
    record Arr(DataType type, long[] shape, double[] data, boolean opaque) {
        Arr(DataType type, long[] shape, double[] data) {
            this(type, shape, data, false);
        }

        int size() {
            return data.length;
        }

        double scalar() {
            return data[0];
        }
    }

    private static final long MAX_ELEMENTS = 1 << 22;
    private static final Set<String> COMPARE = Set.of("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
            "And", "Or", "Xor");
    private final Graph g;
    private final Map<String, Arr> feeds;
    private final Map<Value, Arr> memo = new HashMap<>();

    /** {@code feeds}: graph inputs by name (they override the inputs' defaults). */
    MaskProbe(Graph g, Map<String, Tensor> feeds) {
        this.g = g;
        this.feeds = new HashMap<>();
        feeds.forEach((k, t) -> this.feeds.put(k, of(t)));
    }

    private static Arr of(Tensor t) {
        if (t.elementCount() > MAX_ELEMENTS) {
            throw new Unsupported("a constant of shape " + Arrays.toString(t.shape()) + " is larger than a mask "
                    + "probe's");
        }
        return new Arr(t.dataType(), t.shape(), t.dataType() == DataType.STRING ? new double[0] : t.toDoubleArray());
    }

    Arr eval(Value v) {
        Arr a = memo.get(v);
        if (a == null) {
            Node n = v.producer();
            a = n != null && (ACTIVATIONS.contains(n.opType()) || embeddingLookup(n)) && feeds.get(v.name()) == null
                    ? opaque(n, v) : compute(v);
            if (n != null && !a.opaque() && !n.opType().equals("Shape") && !n.opType().equals("Size")
                    && n.inputs().stream().anyMatch(in -> in != null && memo.containsKey(in)
                            && memo.get(in).opaque())) {
                a = new Arr(a.type(), a.shape(), a.data(), true);
            }
            memo.put(v, a);
        }
        return a;
    }

    /** The shape of {@code v}, without reading the data of constants or computing activations. */
    private long[] shapeOf(Value v) {
        Arr known = memo.get(v);
        if (known != null) {
            return known.shape();
        }
        Arr fed = v.isGraphInput() ? feeds.get(v.name()) : null;
        if (fed != null) {
            return fed.shape();
        }
        Tensor c = g.initializer(v.name());
        if (c == null && v.producer() != null && v.producer().opType().equals("Constant")) {
            c = ShapeInference.constantValue(v);
        }
        return c != null ? c.shape() : eval(v).shape();
    }

    /** Ops of the model's activations: only their output shape is followed (Shape reads it). */
    private static final Set<String> ACTIVATIONS = Set.of("MatMul", "Gemm", "Split", "Softmax", "LogSoftmax",
            "Sqrt", "Erf", "Tanh", "Sigmoid", "Relu", "Exp", "Log", "Reciprocal", "Dropout", "LayerNormalization",
            "SimplifiedLayerNormalization", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceMax");

    /** A Gather of rows of a float table (token or position embeddings): activations, not mask values. */
    private boolean embeddingLookup(Node n) {
        Tensor table = n.opType().equals("Gather") ? g.initializer(n.input(0).name()) : null;
        return table != null && table.dataType().isFloatingPoint() && table.rank() == 2;
    }

    private Arr opaque(Node n, Value v) {
        long[] a = shapeOf(n.input(0));
        long[] shape = switch (n.opType()) {
            case "Gather" -> {
                long[] idx = shapeOf(n.input(1));
                int ax = axis(n.intAttr("axis", 0), a.length);
                long[] out = new long[a.length - 1 + idx.length];
                System.arraycopy(a, 0, out, 0, ax);
                System.arraycopy(idx, 0, out, ax, idx.length);
                System.arraycopy(a, ax + 1, out, ax + idx.length, a.length - ax - 1);
                yield out;
            }
            case "MatMul" -> {
                long[] b = shapeOf(n.input(1));
                if (a.length < 2 || b.length < 2) {
                    throw new Unsupported(n.describe() + ": a MatMul of vectors");
                }
                long[] batch = broadcastShape(Arrays.copyOf(a, a.length - 2), Arrays.copyOf(b, b.length - 2));
                long[] out = Arrays.copyOf(batch, batch.length + 2);
                out[batch.length] = a[a.length - 2];
                out[batch.length + 1] = b[b.length - 1];
                yield out;
            }
            case "Gemm" -> {
                long[] b = shapeOf(n.input(1));
                yield new long[] {n.intAttr("transA", 0) != 0 ? a[1] : a[0], n.intAttr("transB", 0) != 0 ? b[0]
                        : b[1]};
            }
            case "Split" -> {
                int ax = axis(n.intAttr("axis", 0), a.length);
                int which = n.outputs().indexOf(v);
                long[] sizes = n.inputCount() > 1 && n.input(1) != null ? longs(eval(n.input(1)))
                        : n.intsAttr("split", null);
                long[] out = a.clone();
                out[ax] = sizes != null ? sizes[which] : a[ax] / n.outputs().size();
                yield out;
            }
            case "ReduceMean", "ReduceSum", "ReduceMax" -> {
                long[] axes = n.inputCount() > 1 && n.input(1) != null ? longs(eval(n.input(1)))
                        : n.intsAttr("axes", null);
                boolean keep = n.intAttr("keepdims", 1) != 0;
                List<Long> out = new java.util.ArrayList<>();
                for (int i = 0; i < a.length; i++) {
                    final int d = i;
                    boolean reduced = axes == null || Arrays.stream(axes).anyMatch(x -> axis(x, a.length) == d);
                    if (!reduced) {
                        out.add(a[i]);
                    } else if (keep) {
                        out.add(1L);
                    }
                }
                yield out.stream().mapToLong(Long::longValue).toArray();
            }
            default -> {
                if (n.output(0) != v) {
                    throw new Unsupported(n.describe() + ": only the first output is followed");
                }
                yield a;
            }
        };
        return new Arr(DataType.FLOAT, shape, null, true);
    }

    private Arr compute(Value v) {
        if (v.isGraphInput()) {
            Arr fed = feeds.get(v.name());
            if (fed != null) {
                return fed;
            }
        }
        Tensor c = ShapeInference.constantValue(v);
        if (c != null) {
            return of(c);
        }
        if (v.isGraphInput() && g.initializer(v.name()) != null) {
            return of(g.initializer(v.name()));
        }
        Node n = v.producer();
        if (n == null) {
            throw new Unsupported("'" + v.name() + "' is an input the probe does not feed");
        }
        if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
            throw new Unsupported(n.describe() + " is outside the standard domain");
        }
        if (n.outputs().size() > 1 && n.output(0) != v) {
            throw new Unsupported(n.describe() + ": only the first output is evaluated");
        }
        return switch (n.opType()) {
            case "Identity" -> in(n, 0);
            case "Cast" -> cast(in(n, 0), DataType.fromOnnx((int) n.intAttr("to", 1)));
            case "Shape" -> shape(n);
            case "Size" -> new Arr(DataType.INT64, new long[0], new double[] {count(shapeOf(n.input(0)))});
            case "Gather" -> gather(in(n, 0), in(n, 1), n.intAttr("axis", 0));
            case "Unsqueeze" -> unsqueeze(n);
            case "Squeeze" -> squeeze(n);
            case "Concat" -> concat(n);
            case "Range" -> range(in(n, 0), in(n, 1), in(n, 2));
            case "ConstantOfShape" -> constantOfShape(n);
            case "Expand" -> broadcastTo(in(n, 0), broadcastShape(in(n, 0).shape(), longs(in(n, 1))));
            case "Reshape" -> reshape(in(n, 0), longs(in(n, 1)));
            case "Slice" -> slice(n);
            case "Trilu" -> trilu(n);
            case "Transpose" -> transpose(in(n, 0), n.intsAttr("perm", null));
            case "Where" -> where(in(n, 0), in(n, 1), in(n, 2));
            case "Not" -> map(in(n, 0), DataType.BOOL, x -> x == 0 ? 1 : 0);
            case "Neg" -> map(in(n, 0), in(n, 0).type(), x -> -x);
            case "Abs" -> map(in(n, 0), in(n, 0).type(), Math::abs);
            case "Add", "Sub", "Mul", "Div", "Min", "Max", "Pow" -> variadic(n);
            default -> {
                if (COMPARE.contains(n.opType())) {
                    yield binary(n.opType(), in(n, 0), in(n, 1), DataType.BOOL);
                }
                throw new Unsupported(n.describe() + " (" + n.opType() + ") is not a mask operation");
            }
        };
    }

    private Arr in(Node n, int i) {
        if (i >= n.inputCount() || n.input(i) == null) {
            throw new Unsupported(n.describe() + ": input " + i + " is absent");
        }
        Arr a = eval(n.input(i));
        return a.data() != null ? a : new Arr(a.type(), a.shape(), new double[(int) count(a.shape())], true);
    }

    private static long[] longs(Arr a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (long) a.data()[i];
        }
        return out;
    }

    private static Arr cast(Arr a, DataType to) {
        if (to == DataType.BOOL) {
            return map(a, to, x -> x != 0 ? 1 : 0);
        }
        if (to.isInteger()) {
            return map(a, to, x -> (double) (long) x);
        }
        return map(a, to, to == DataType.FLOAT ? x -> (float) x : x -> x);
    }

    private static Arr map(Arr a, DataType type, java.util.function.DoubleUnaryOperator f) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = f.applyAsDouble(a.data()[i]);
        }
        return new Arr(type, a.shape(), out);
    }

    private Arr shape(Node n) {
        long[] s = shapeOf(n.input(0));
        int r = s.length;
        int start = (int) clampAxis(n.intAttr("start", 0), r);
        int end = (int) clampAxis(n.intAttr("end", r), r);
        long[] part = Arrays.copyOfRange(s, start, Math.max(start, end));
        return new Arr(DataType.INT64, new long[] {part.length}, Arrays.stream(part).asDoubleStream().toArray());
    }

    private static long clampAxis(long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        return Math.max(0, Math.min(rank, a));
    }

    private static int axis(long axis, int rank) {
        return (int) (axis < 0 ? axis + rank : axis);
    }

    private static long[] strides(long[] shape) {
        long[] st = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = s;
            s *= shape[i];
        }
        return st;
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n > MAX_ELEMENTS) {
            throw new Unsupported("a tensor of shape " + Arrays.toString(shape) + " is larger than a mask probe's");
        }
        return n;
    }

    private static Arr gather(Arr data, Arr idx, long axisAttr) {
        int ax = axis(axisAttr, data.shape().length);
        long[] ds = data.shape();
        long[] os = new long[ds.length - 1 + idx.shape().length];
        System.arraycopy(ds, 0, os, 0, ax);
        System.arraycopy(idx.shape(), 0, os, ax, idx.shape().length);
        System.arraycopy(ds, ax + 1, os, ax + idx.shape().length, ds.length - ax - 1);
        long outer = 1;
        for (int i = 0; i < ax; i++) {
            outer *= ds[i];
        }
        long inner = 1;
        for (int i = ax + 1; i < ds.length; i++) {
            inner *= ds[i];
        }
        double[] out = new double[(int) count(os)];
        int k = 0;
        for (long o = 0; o < outer; o++) {
            for (double id : idx.data()) {
                long j = (long) id < 0 ? (long) id + ds[ax] : (long) id;
                for (long i = 0; i < inner; i++) {
                    out[k++] = data.data()[(int) ((o * ds[ax] + j) * inner + i)];
                }
            }
        }
        return new Arr(data.type(), os, out);
    }

    private long[] axesOf(Node n) {
        if (n.inputCount() > 1 && n.input(1) != null) {
            return longs(in(n, 1));
        }
        return n.intsAttr("axes", null);
    }

    private Arr unsqueeze(Node n) {
        Arr x = in(n, 0);
        long[] axes = axesOf(n);
        int r = x.shape().length + axes.length;
        boolean[] added = new boolean[r];
        for (long a : axes) {
            added[axis(a, r)] = true;
        }
        long[] s = new long[r];
        for (int i = 0, j = 0; i < r; i++) {
            s[i] = added[i] ? 1 : x.shape()[j++];
        }
        return new Arr(x.type(), s, x.data());
    }

    private Arr squeeze(Node n) {
        Arr x = in(n, 0);
        long[] axes = axesOf(n);
        int r = x.shape().length;
        boolean[] drop = new boolean[r];
        for (int i = 0; i < r; i++) {
            drop[i] = axes == null && x.shape()[i] == 1;
        }
        if (axes != null) {
            for (long a : axes) {
                drop[axis(a, r)] = true;
            }
        }
        long[] s = java.util.stream.IntStream.range(0, r).filter(i -> !drop[i]).mapToLong(i -> x.shape()[i]).toArray();
        return new Arr(x.type(), s, x.data());
    }

    private Arr concat(Node n) {
        List<Arr> parts = java.util.stream.IntStream.range(0, n.inputCount()).filter(i -> n.input(i) != null)
                .mapToObj(i -> in(n, i)).toList();
        int ax = axis(n.intAttr("axis", 0), parts.get(0).shape().length);
        long[] s = parts.get(0).shape().clone();
        s[ax] = parts.stream().mapToLong(p -> p.shape()[ax]).sum();
        long outer = 1;
        for (int i = 0; i < ax; i++) {
            outer *= s[i];
        }
        double[] out = new double[(int) count(s)];
        int k = 0;
        for (long o = 0; o < outer; o++) {
            for (Arr p : parts) {
                int block = (int) (p.size() / Math.max(1, outer));
                System.arraycopy(p.data(), (int) (o * block), out, k, block);
                k += block;
            }
        }
        return new Arr(parts.get(0).type(), s, out);
    }

    private static Arr range(Arr start, Arr limit, Arr delta) {
        double s = start.scalar();
        double d = delta.scalar();
        long n = Math.max(0, (long) Math.ceil((limit.scalar() - s) / d));
        double[] out = new double[(int) count(new long[] {n})];
        for (int i = 0; i < n; i++) {
            out[i] = s + i * d;
        }
        return new Arr(start.type(), new long[] {n}, out);
    }

    private Arr constantOfShape(Node n) {
        long[] s = longs(in(n, 0));
        Attribute a = n.attribute("value");
        Tensor v = a == null ? Tensor.ofFloats(new float[] {0f}, 1) : a.asTensor();
        double[] out = new double[(int) count(s)];
        Arrays.fill(out, v.toDoubleArray()[0]);
        return new Arr(v.dataType(), s, out);
    }

    private static long[] broadcastShape(long[] a, long[] b) {
        int r = Math.max(a.length, b.length);
        long[] s = new long[r];
        for (int i = 0; i < r; i++) {
            long x = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
            long y = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
            if (x != y && x != 1 && y != 1) {
                throw new Unsupported("shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " do not broadcast");
            }
            s[i] = x == 1 ? y : x;
        }
        return s;
    }

    /** {@code a} broadcast to {@code shape}. */
    private static Arr broadcastTo(Arr a, long[] shape) {
        if (Arrays.equals(a.shape(), shape)) {
            return a;
        }
        long[] st = strides(a.shape());
        int off = shape.length - a.shape().length;
        long[] ost = strides(shape);
        double[] out = new double[(int) count(shape)];
        for (int i = 0; i < out.length; i++) {
            long src = 0;
            for (int d = off; d < shape.length; d++) {
                long coord = i / ost[d] % shape[d];
                src += a.shape()[d - off] == 1 ? 0 : coord * st[d - off];
            }
            out[i] = a.data()[(int) src];
        }
        return new Arr(a.type(), shape, out);
    }

    private static Arr reshape(Arr x, long[] target) {
        long[] s = target.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == 0) {
                s[i] = x.shape()[i];
            }
            if (s[i] == -1) {
                infer = i;
            } else {
                known *= s[i];
            }
        }
        if (infer >= 0) {
            s[infer] = known == 0 ? 0 : x.size() / known;
        }
        return new Arr(x.type(), s, x.data());
    }

    private Arr slice(Node n) {
        Arr x = in(n, 0);
        int r = x.shape().length;
        long[] starts;
        long[] ends;
        long[] axes;
        long[] steps;
        if (n.inputCount() >= 3) {
            starts = longs(in(n, 1));
            ends = longs(in(n, 2));
            axes = n.inputCount() > 3 && n.input(3) != null ? longs(in(n, 3)) : null;
            steps = n.inputCount() > 4 && n.input(4) != null ? longs(in(n, 4)) : null;
        } else {
            starts = n.intsAttr("starts", null);
            ends = n.intsAttr("ends", null);
            axes = n.intsAttr("axes", null);
            steps = null;
        }
        long[] st = new long[r];
        long[] step = new long[r];
        long[] len = x.shape().clone();
        Arrays.fill(step, 1);
        for (int i = 0; i < starts.length; i++) {
            int ax = axis(axes == null ? i : axes[i], r);
            long dim = x.shape()[ax];
            long s1 = steps == null ? 1 : steps[i];
            if (s1 <= 0) {
                throw new Unsupported(n.describe() + ": negative slice steps");
            }
            long b = starts[i] < 0 ? starts[i] + dim : starts[i];
            long e = ends[i] < 0 ? ends[i] + dim : ends[i];
            b = Math.max(0, Math.min(dim, b));
            e = Math.max(0, Math.min(dim, e));
            st[ax] = b;
            step[ax] = s1;
            len[ax] = Math.max(0, (e - b + s1 - 1) / s1);
        }
        long[] xs = strides(x.shape());
        long[] os = strides(len);
        double[] out = new double[(int) count(len)];
        for (int i = 0; i < out.length; i++) {
            long src = 0;
            for (int d = 0; d < r; d++) {
                src += (st[d] + (i / os[d] % len[d]) * step[d]) * xs[d];
            }
            out[i] = x.data()[(int) src];
        }
        return new Arr(x.type(), len, out);
    }

    private Arr trilu(Node n) {
        Arr x = in(n, 0);
        long k = n.inputCount() > 1 && n.input(1) != null ? (long) in(n, 1).scalar() : 0;
        boolean upper = n.intAttr("upper", 1) != 0;
        long[] s = x.shape();
        long rows = s[s.length - 2];
        long cols = s[s.length - 1];
        double[] out = x.data().clone();
        for (int i = 0; i < out.length; i++) {
            long row = i / cols % rows;
            long col = i % cols;
            boolean keep = upper ? col - row >= k : col - row <= k;
            if (!keep) {
                out[i] = 0;
            }
        }
        return new Arr(x.type(), s, out);
    }

    private static Arr transpose(Arr x, long[] perm) {
        int r = x.shape().length;
        long[] p = perm;
        if (p == null) {
            p = new long[r];
            for (int i = 0; i < r; i++) {
                p[i] = r - 1 - i;
            }
        }
        long[] s = new long[r];
        for (int i = 0; i < r; i++) {
            s[i] = x.shape()[(int) p[i]];
        }
        long[] xs = strides(x.shape());
        long[] os = strides(s);
        double[] out = new double[x.size()];
        for (int i = 0; i < out.length; i++) {
            long src = 0;
            for (int d = 0; d < r; d++) {
                src += (i / os[d] % s[d]) * xs[(int) p[d]];
            }
            out[i] = x.data()[(int) src];
        }
        return new Arr(x.type(), s, out);
    }

    private static Arr where(Arr c, Arr a, Arr b) {
        long[] s = broadcastShape(broadcastShape(c.shape(), a.shape()), b.shape());
        Arr cc = broadcastTo(c, s);
        Arr aa = broadcastTo(a, s);
        Arr bb = broadcastTo(b, s);
        double[] out = new double[aa.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = cc.data()[i] != 0 ? aa.data()[i] : bb.data()[i];
        }
        return new Arr(a.type(), s, out);
    }

    private Arr variadic(Node n) {
        Arr acc = in(n, 0);
        for (int i = 1; i < n.inputCount(); i++) {
            acc = binary(n.opType(), acc, in(n, i), acc.type());
        }
        return acc;
    }

    private static Arr binary(String op, Arr a, Arr b, DataType type) {
        long[] s = broadcastShape(a.shape(), b.shape());
        Arr aa = broadcastTo(a, s);
        Arr bb = broadcastTo(b, s);
        boolean integer = type.isInteger();
        double[] out = new double[aa.size()];
        for (int i = 0; i < out.length; i++) {
            double x = aa.data()[i];
            double y = bb.data()[i];
            out[i] = switch (op) {
                case "Add" -> x + y;
                case "Sub" -> x - y;
                case "Mul" -> x * y;
                case "Div" -> integer ? (double) ((long) x / (long) y) : x / y;
                case "Min" -> Math.min(x, y);
                case "Max" -> Math.max(x, y);
                case "Pow" -> Math.pow(x, y);
                case "Equal" -> x == y ? 1 : 0;
                case "Less" -> x < y ? 1 : 0;
                case "LessOrEqual" -> x <= y ? 1 : 0;
                case "Greater" -> x > y ? 1 : 0;
                case "GreaterOrEqual" -> x >= y ? 1 : 0;
                case "And" -> x != 0 && y != 0 ? 1 : 0;
                case "Or" -> x != 0 || y != 0 ? 1 : 0;
                case "Xor" -> (x != 0) != (y != 0) ? 1 : 0;
                default -> throw new Unsupported(op + " is not a mask operation");
            };
            if (type == DataType.FLOAT && !COMPARE.contains(op)) {
                // float32 arithmetic saturates as the graph does (min + min is -inf, not -6.8e38).
                out[i] = (float) out[i];
            }
        }
        return new Arr(type, s, out);
    }
}
