package dev.pet.onnx.build;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Element-type and shape inference for the operators PET Runtime builds and differentiates. Where a shape depends
 * on data that is not constant, dimensions become unknown rather than wrong; callers needing exact shapes then
 * compute them in the graph. Unknown ops leave their outputs' types as they are.
 */
public final class ShapeInference {
    private ShapeInference() {
    }

    /** Infers and assigns the types of every node output in topological order. */
    public static void inferGraph(Graph graph, int opset) {
        for (Node n : graph.topologicalOrder()) {
            infer(n, opset);
        }
    }

    /** Infers and assigns the output types of one node whose input types are known (as far as possible). */
    public static void infer(Node n, int opset) {
        List<TensorType> out = inferTypes(n, opset);
        for (int i = 0; i < out.size() && i < n.outputs().size(); i++) {
            Value v = n.output(i);
            TensorType t = out.get(i);
            if (v != null && t != null && (t.dataType() != null || t.hasRank())) {
                v.setType(merge(v.type(), t));
            }
        }
    }

    private static TensorType merge(TensorType declared, TensorType inferred) {
        DataType dt = inferred.dataType() != null ? inferred.dataType() : declared.dataType();
        List<Dim> dims = inferred.dims();
        if (dims == null) {
            dims = declared.dims();
        } else if (declared.dims() != null && declared.dims().size() == dims.size()) {
            List<Dim> m = new ArrayList<>(dims);
            for (int i = 0; i < m.size(); i++) {
                if (!m.get(i).isFixed() && !m.get(i).isSymbolic()) {
                    m.set(i, declared.dims().get(i));
                }
            }
            dims = m;
        }
        return new TensorType(dt, dims);
    }

    private static TensorType in(Node n, int i) {
        Value v = n.input(i);
        return v == null ? TensorType.unknown() : v.type();
    }

    private static List<TensorType> one(TensorType t) {
        return List.of(t);
    }

    static List<TensorType> inferTypes(Node n, int opset) {
        if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
            return List.of();
        }
        TensorType x = in(n, 0);
        switch (n.opType()) {
            case "Identity", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Erf", "Sigmoid", "Relu", "Abs",
                    "Sign", "Softmax", "LogSoftmax", "Gelu", "Floor", "Ceil", "Round", "Clip", "Trilu", "Sin",
                    "Cos", "LeakyRelu", "Elu", "Softplus", "HardSigmoid":
                return one(x);
            case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mod": {
                TensorType t = x;
                for (int i = 1; i < n.inputCount(); i++) {
                    t = broadcast(t, in(n, i));
                }
                DataType dt = n.opType().equals("Pow") ? x.dataType() : t.dataType();
                return one(new TensorType(dt, t.dims()));
            }
            case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor": {
                return one(new TensorType(DataType.BOOL, broadcast(x, in(n, 1)).dims()));
            }
            case "Not", "IsNaN", "IsInf":
                return one(x.withDataType(DataType.BOOL));
            case "Where": {
                TensorType t = broadcast(broadcast(x, in(n, 1)), in(n, 2));
                return one(new TensorType(in(n, 1).dataType() != null ? in(n, 1).dataType() : in(n, 2).dataType(),
                        t.dims()));
            }
            case "Cast":
                return one(x.withDataType(DataType.fromOnnx((int) n.intAttr("to", 1))));
            case "CastLike":
                return one(x.withDataType(in(n, 1).dataType()));
            case "MatMul":
                return one(matMul(x, in(n, 1)));
            case "Gemm": {
                TensorType b = in(n, 1);
                if (!x.hasRank() || !b.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                Dim m = n.intAttr("transA", 0) != 0 ? x.dims().get(1) : x.dims().get(0);
                Dim k = n.intAttr("transB", 0) != 0 ? b.dims().get(0) : b.dims().get(1);
                return one(new TensorType(x.dataType(), List.of(m, k)));
            }
            case "LayerNormalization": {
                long axis = n.intAttr("axis", -1);
                List<TensorType> outs = new ArrayList<>();
                outs.add(x);
                if (x.hasRank()) {
                    int a = (int) (axis < 0 ? axis + x.rank() : axis);
                    List<Dim> stat = new ArrayList<>(x.dims().subList(0, a));
                    for (int i = a; i < x.rank(); i++) {
                        stat.add(Dim.of(1));
                    }
                    TensorType s = new TensorType(statType(n, x), stat);
                    outs.add(s);
                    outs.add(s);
                } else {
                    outs.add(TensorType.unknown());
                    outs.add(TensorType.unknown());
                }
                return outs;
            }
            case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare",
                    "ReduceLogSumExp":
                return one(reduce(n, x, opset));
            case "Reshape":
                return one(reshape(n, x));
            case "Flatten": {
                if (!x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                long axis = n.intAttr("axis", 1);
                int a = (int) (axis < 0 ? axis + x.rank() : axis);
                return one(new TensorType(x.dataType(), List.of(product(x.dims().subList(0, a)),
                        product(x.dims().subList(a, x.rank())))));
            }
            case "Transpose": {
                if (!x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                long[] perm = n.intsAttr("perm", null);
                List<Dim> d = new ArrayList<>();
                for (int i = 0; i < x.rank(); i++) {
                    d.add(x.dims().get(perm == null ? x.rank() - 1 - i : (int) perm[i]));
                }
                return one(new TensorType(x.dataType(), d));
            }
            case "Unsqueeze": {
                long[] axes = opset >= 13 ? constantInts(n.input(1)) : n.intsAttr("axes", null);
                if (axes == null || !x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                int r = x.rank() + axes.length;
                List<Dim> d = new ArrayList<>();
                boolean[] isNew = new boolean[r];
                for (long a : axes) {
                    isNew[(int) (a < 0 ? a + r : a)] = true;
                }
                int j = 0;
                for (int i = 0; i < r; i++) {
                    d.add(isNew[i] ? Dim.of(1) : x.dims().get(j++));
                }
                return one(new TensorType(x.dataType(), d));
            }
            case "Squeeze": {
                long[] axes = n.inputCount() > 1 ? constantInts(n.input(1)) : n.intsAttr("axes", null);
                if (!x.hasRank() || (axes == null && n.inputCount() > 1)) {
                    return one(new TensorType(x.dataType(), null));
                }
                List<Dim> d = new ArrayList<>();
                for (int i = 0; i < x.rank(); i++) {
                    boolean drop = false;
                    if (axes == null) {
                        drop = x.dims().get(i).isFixed() && x.dims().get(i).value() == 1;
                    } else {
                        for (long a : axes) {
                            drop |= (a < 0 ? a + x.rank() : a) == i;
                        }
                    }
                    if (!drop) {
                        d.add(x.dims().get(i));
                    }
                }
                return one(new TensorType(x.dataType(), d));
            }
            case "Concat": {
                if (!x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                int a = axis(n.intAttr("axis", 0), x.rank());
                List<Dim> d = new ArrayList<>(x.dims());
                long total = 0;
                boolean known = true;
                for (Value v : n.inputs()) {
                    if (v == null || !v.type().hasRank() || !v.type().dims().get(a).isFixed()) {
                        known = false;
                        break;
                    }
                    total += v.type().dims().get(a).value();
                }
                d.set(a, known ? Dim.of(total) : Dim.unknown());
                return one(new TensorType(x.dataType(), d));
            }
            case "Split": {
                int count = n.outputs().size();
                List<TensorType> outs = new ArrayList<>();
                long[] sizes = n.inputCount() > 1 ? constantInts(n.input(1)) : n.intsAttr("split", null);
                for (int i = 0; i < count; i++) {
                    if (!x.hasRank()) {
                        outs.add(new TensorType(x.dataType(), null));
                        continue;
                    }
                    int a = axis(n.intAttr("axis", 0), x.rank());
                    List<Dim> d = new ArrayList<>(x.dims());
                    Dim whole = x.dims().get(a);
                    if (sizes != null) {
                        d.set(a, Dim.of(sizes[i]));
                    } else if (whole.isFixed() && whole.value() % count == 0) {
                        d.set(a, Dim.of(whole.value() / count));
                    } else {
                        d.set(a, Dim.unknown());
                    }
                    outs.add(new TensorType(x.dataType(), d));
                }
                return outs;
            }
            case "Slice":
                return one(slice(n, x));
            case "Gather": {
                TensorType idx = in(n, 1);
                if (!x.hasRank() || !idx.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                int a = axis(n.intAttr("axis", 0), x.rank());
                List<Dim> d = new ArrayList<>(x.dims().subList(0, a));
                d.addAll(idx.dims());
                d.addAll(x.dims().subList(a + 1, x.rank()));
                return one(new TensorType(x.dataType(), d));
            }
            case "GatherElements":
                return one(new TensorType(x.dataType(), in(n, 1).dims()));
            case "Expand": {
                long[] shape = constantInts(n.input(1));
                if (shape == null || !x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                return one(broadcast(x, TensorType.of(x.dataType(), shape)));
            }
            case "Shape": {
                if (!x.hasRank()) {
                    return one(new TensorType(DataType.INT64, List.of(Dim.unknown())));
                }
                int r = x.rank();
                long start = n.intAttr("start", 0);
                long end = n.intAttr("end", r);
                start = Math.max(0, Math.min(r, start < 0 ? start + r : start));
                end = Math.max(0, Math.min(r, end < 0 ? end + r : end));
                return one(TensorType.of(DataType.INT64, Math.max(0, end - start)));
            }
            case "Size":
                return one(TensorType.of(DataType.INT64));
            case "ConstantOfShape": {
                Attribute v = n.attribute("value");
                DataType dt = v == null ? DataType.FLOAT : v.asTensor().dataType();
                long[] shape = constantInts(n.input(0));
                if (shape != null) {
                    return one(TensorType.of(dt, shape));
                }
                TensorType s = in(n, 0);
                if (s.isStatic() && s.rank() == 1) {
                    List<Dim> d = new ArrayList<>();
                    for (long i = 0; i < s.shape()[0]; i++) {
                        d.add(Dim.unknown());
                    }
                    return one(new TensorType(dt, d));
                }
                return one(new TensorType(dt, null));
            }
            case "Constant": {
                Attribute v = n.attribute("value");
                if (v != null && v.kind() == Attribute.Kind.TENSOR) {
                    Tensor t = v.asTensor();
                    return one(TensorType.of(t.dataType(), t.shape()));
                }
                if (n.attribute("value_int") != null) {
                    return one(TensorType.of(DataType.INT64));
                }
                if (n.attribute("value_ints") != null) {
                    return one(TensorType.of(DataType.INT64, n.attribute("value_ints").asInts().length));
                }
                if (n.attribute("value_float") != null) {
                    return one(TensorType.of(DataType.FLOAT));
                }
                if (n.attribute("value_floats") != null) {
                    return one(TensorType.of(DataType.FLOAT, n.attribute("value_floats").asFloats().length));
                }
                return List.of();
            }
            case "ArgMax", "ArgMin": {
                if (!x.hasRank()) {
                    return one(new TensorType(DataType.INT64, null));
                }
                int a = axis(n.intAttr("axis", 0), x.rank());
                List<Dim> d = new ArrayList<>(x.dims());
                if (n.intAttr("keepdims", 1) != 0) {
                    d.set(a, Dim.of(1));
                } else {
                    d.remove(a);
                }
                return one(new TensorType(DataType.INT64, d));
            }
            case "ScatterND", "ScatterElements":
                return one(x);
            case "NonZero":
                return one(new TensorType(DataType.INT64, List.of(x.hasRank() ? Dim.of(x.rank()) : Dim.unknown(),
                        Dim.unknown())));
            case "Pad": {
                long[] pads = constantInts(n.input(1));
                if (!x.hasRank()) {
                    return one(new TensorType(x.dataType(), null));
                }
                List<Dim> d = new ArrayList<>();
                for (int i = 0; i < x.rank(); i++) {
                    Dim di = x.dims().get(i);
                    d.add(pads != null && pads.length == 2 * x.rank() && n.input(3) == null && di.isFixed()
                            ? Dim.of(di.value() + pads[i] + pads[i + x.rank()]) : Dim.unknown());
                }
                return one(new TensorType(x.dataType(), d));
            }
            case "Range":
                return one(new TensorType(x.dataType(), List.of(rangeLength(n))));
            case "Dropout": {
                return List.of(x, x.withDataType(DataType.BOOL));
            }
            case "SoftmaxCrossEntropyLoss": {
                String reduction = n.stringAttr("reduction", "mean");
                TensorType labels = in(n, 1);
                TensorType loss = reduction.equals("none") ? new TensorType(x.dataType(), labels.dims())
                        : TensorType.of(x.dataType());
                return List.of(loss, x);
            }
            default:
                return List.of();
        }
    }

    /**
     * The length of {@code Range(0, limit, 1)} when the limit is a dimension of another value, read as
     * {@code Gather(Shape(v), i)} or {@code Squeeze(Shape(v, i, i+1))}: that dimension (e.g. the symbolic
     * sequence length), so positions and masks built from it keep the model's named dimensions.
     */
    private static Dim rangeLength(Node n) {
        long[] start = constantInts(n.input(0));
        long[] delta = constantInts(n.input(2));
        long[] limit = constantInts(n.input(1));
        if (start == null || delta == null || start.length != 1 || delta.length != 1 || delta[0] != 1) {
            return Dim.unknown();
        }
        if (limit != null && limit.length == 1) {
            return Dim.of(Math.max(0, limit[0] - start[0]));
        }
        if (start[0] != 0 || n.input(1) == null || n.input(1).producer() == null) {
            return Dim.unknown();
        }
        Node p = n.input(1).producer();
        Value shapeOf = null;
        long index = -1;
        if (p.opType().equals("Gather") && p.input(0) != null && p.input(0).producer() != null
                && p.input(0).producer().opType().equals("Shape") && p.intAttr("axis", 0) == 0) {
            long[] i = constantInts(p.input(1));
            if (i != null && i.length == 1 && p.input(1).type().hasRank() && p.input(1).type().rank() == 0) {
                shapeOf = p.input(0);
                index = i[0];
            }
        } else if (p.opType().equals("Squeeze") && p.input(0) != null && p.input(0).producer() != null
                && p.input(0).producer().opType().equals("Shape")) {
            Node shape = p.input(0).producer();
            Attribute st = shape.attribute("start");
            Attribute en = shape.attribute("end");
            if (st != null && en != null && en.asInt() == st.asInt() + 1) {
                shapeOf = p.input(0);
                index = st.asInt();
            }
        }
        if (shapeOf == null) {
            return Dim.unknown();
        }
        Node shapeNode = shapeOf.producer();
        long offset = shapeNode.intAttr("start", 0);
        TensorType src = in(shapeNode, 0);
        if (!src.hasRank() || offset != 0 && p.opType().equals("Gather")) {
            return Dim.unknown();
        }
        int r = src.rank();
        long i = index < 0 ? index + r : index;
        if (p.opType().equals("Squeeze")) {
            i = index < 0 ? index + r : index;
        }
        return i >= 0 && i < r ? src.dims().get((int) i) : Dim.unknown();
    }

    private static DataType statType(Node n, TensorType x) {
        // Mean and InvStdDev have type U, which the ONNX schema limits to float and bfloat16 (ORT: float).
        long stash = n.intAttr("stash_type", 1);
        return stash == 1 ? DataType.FLOAT : DataType.fromOnnx((int) stash);
    }

    private static int axis(long axis, int rank) {
        return (int) (axis < 0 ? axis + rank : axis);
    }

    private static Dim product(List<Dim> dims) {
        long p = 1;
        for (Dim d : dims) {
            if (!d.isFixed()) {
                return Dim.unknown();
            }
            p *= d.value();
        }
        return Dim.of(p);
    }

    /** Numpy-style broadcasting of two types; unknown dims stay unknown unless the other side decides. */
    public static TensorType broadcast(TensorType a, TensorType b) {
        DataType dt = a.dataType() != null ? a.dataType() : b.dataType();
        if (!a.hasRank() || !b.hasRank()) {
            return new TensorType(dt, null);
        }
        int r = Math.max(a.rank(), b.rank());
        List<Dim> d = new ArrayList<>(r);
        for (int i = 0; i < r; i++) {
            Dim da = i < r - a.rank() ? Dim.of(1) : a.dims().get(i - (r - a.rank()));
            Dim db = i < r - b.rank() ? Dim.of(1) : b.dims().get(i - (r - b.rank()));
            d.add(broadcastDim(da, db));
        }
        return new TensorType(dt, d);
    }

    private static Dim broadcastDim(Dim a, Dim b) {
        if (a.isFixed() && a.value() == 1) {
            return b;
        }
        if (b.isFixed() && b.value() == 1) {
            return a;
        }
        if (a.isFixed() && b.isFixed()) {
            if (a.value() != b.value()) {
                throw new OnnxException("shapes cannot broadcast: dimension " + a + " vs " + b);
            }
            return a;
        }
        if (a.isFixed()) {
            return a;
        }
        if (b.isFixed()) {
            return b;
        }
        return a.equals(b) ? a : Dim.unknown();
    }

    private static TensorType matMul(TensorType a, TensorType b) {
        DataType dt = a.dataType();
        if (!a.hasRank() || !b.hasRank()) {
            return new TensorType(dt, null);
        }
        List<Dim> ad = new ArrayList<>(a.dims());
        List<Dim> bd = new ArrayList<>(b.dims());
        boolean aVec = ad.size() == 1;
        boolean bVec = bd.size() == 1;
        if (aVec) {
            ad.add(0, Dim.of(1));
        }
        if (bVec) {
            bd.add(Dim.of(1));
        }
        TensorType batch = broadcast(new TensorType(dt, ad.subList(0, ad.size() - 2)),
                new TensorType(dt, bd.subList(0, bd.size() - 2)));
        List<Dim> d = new ArrayList<>(batch.dims());
        if (!aVec) {
            d.add(ad.get(ad.size() - 2));
        }
        if (!bVec) {
            d.add(bd.get(bd.size() - 1));
        }
        return new TensorType(dt, d);
    }

    private static TensorType reduce(Node n, TensorType x, int opset) {
        boolean allAxes = (n.inputCount() < 2 || n.input(1) == null) && n.intsAttr("axes", null) == null;
        if (allAxes && n.intAttr("keepdims", 1) == 0 && n.intAttr("noop_with_empty_axes", 0) == 0) {
            return TensorType.of(x.dataType());
        }
        if (!x.hasRank()) {
            return new TensorType(x.dataType(), null);
        }
        long[] axes;
        if (n.inputCount() > 1 && n.input(1) != null) {
            axes = constantInts(n.input(1));
            if (axes == null) {
                return new TensorType(x.dataType(), null);
            }
        } else {
            axes = n.intsAttr("axes", null);
        }
        boolean keep = n.intAttr("keepdims", 1) != 0;
        boolean noopWithEmpty = n.intAttr("noop_with_empty_axes", 0) != 0;
        if ((axes == null || axes.length == 0) && noopWithEmpty) {
            return x;
        }
        boolean[] reduced = new boolean[x.rank()];
        if (axes == null || axes.length == 0) {
            java.util.Arrays.fill(reduced, true);
        } else {
            for (long a : axes) {
                reduced[axis(a, x.rank())] = true;
            }
        }
        List<Dim> d = new ArrayList<>();
        for (int i = 0; i < x.rank(); i++) {
            if (!reduced[i]) {
                d.add(x.dims().get(i));
            } else if (keep) {
                d.add(Dim.of(1));
            }
        }
        return new TensorType(x.dataType(), d);
    }

    private static TensorType reshape(Node n, TensorType x) {
        long[] shape = constantInts(n.input(1));
        if (shape == null) {
            TensorType s = in(n, 1);
            if (s.isStatic() && s.rank() == 1) {
                List<Dim> d = new ArrayList<>();
                for (long i = 0; i < s.shape()[0]; i++) {
                    d.add(Dim.unknown());
                }
                return new TensorType(x.dataType(), d);
            }
            return new TensorType(x.dataType(), null);
        }
        boolean allowZero = n.intAttr("allowzero", 0) != 0;
        List<Dim> d = new ArrayList<>();
        int inferIdx = -1;
        long known = 1;
        boolean knownOk = true;
        for (int i = 0; i < shape.length; i++) {
            long s = shape[i];
            if (s == -1) {
                inferIdx = i;
                d.add(Dim.unknown());
            } else if (s == 0 && !allowZero) {
                Dim src = x.hasRank() && i < x.rank() ? x.dims().get(i) : Dim.unknown();
                d.add(src);
                if (src.isFixed()) {
                    known *= src.value();
                } else {
                    knownOk = false;
                }
            } else {
                d.add(Dim.of(s));
                known *= s;
            }
        }
        if (inferIdx >= 0 && knownOk && x.isStatic() && known > 0) {
            long total = 1;
            for (long s : x.shape()) {
                total *= s;
            }
            d.set(inferIdx, Dim.of(total / known));
        }
        return new TensorType(x.dataType(), d);
    }

    private static TensorType slice(Node n, TensorType x) {
        if (!x.hasRank()) {
            return new TensorType(x.dataType(), null);
        }
        long[] starts = constantInts(n.input(1));
        long[] ends = constantInts(n.input(2));
        long[] axes = n.inputCount() > 3 && n.input(3) != null ? constantInts(n.input(3)) : null;
        long[] steps = n.inputCount() > 4 && n.input(4) != null ? constantInts(n.input(4)) : null;
        List<Dim> d = new ArrayList<>(x.dims());
        if (starts == null || ends == null || (n.inputCount() > 3 && n.input(3) != null && axes == null)
                || (n.inputCount() > 4 && n.input(4) != null && steps == null)) {
            if (axes != null) {
                for (long a : axes) {
                    d.set(axis(a, x.rank()), Dim.unknown());
                }
                return new TensorType(x.dataType(), d);
            }
            List<Dim> u = new ArrayList<>();
            for (int i = 0; i < x.rank(); i++) {
                u.add(Dim.unknown());
            }
            return new TensorType(x.dataType(), u);
        }
        for (int i = 0; i < starts.length; i++) {
            int a = axes == null ? i : axis(axes[i], x.rank());
            long step = steps == null ? 1 : steps[i];
            Dim dim = x.dims().get(a);
            if (!dim.isFixed()) {
                d.set(a, Dim.unknown());
                continue;
            }
            d.set(a, Dim.of(sliceLength(dim.value(), starts[i], ends[i], step)));
        }
        return new TensorType(x.dataType(), d);
    }

    /** Number of elements ONNX Slice takes from a dimension of size {@code dim}. */
    public static long sliceLength(long dim, long start, long end, long step) {
        if (step == 0) {
            throw new OnnxException("Slice step must not be 0");
        }
        if (start < 0) {
            start += dim;
        }
        if (end < 0) {
            end += dim;
        }
        if (step > 0) {
            start = Math.max(0, Math.min(dim, start));
            end = Math.max(0, Math.min(dim, end));
            return Math.max(0, (end - start + step - 1) / step);
        }
        start = Math.max(-1, Math.min(dim - 1, start));
        end = Math.max(-1, Math.min(dim - 1, end));
        return Math.max(0, (start - end + (-step) - 1) / (-step));
    }

    /** The int64 values of a constant (initializer or Constant node), or null when not constant. */
    public static long[] constantInts(Value v) {
        Tensor t = constantValue(v);
        if (t == null || t.dataType().isFloatingPoint()) {
            return null;
        }
        return t.toLongArray();
    }

    /** The tensor of a constant value (initializer or Constant node), or null when not constant. */
    public static Tensor constantValue(Value v) {
        if (v == null) {
            return null;
        }
        Tensor init = v.graph().initializer(v.name());
        if (init != null && !v.isGraphInput()) {
            return init;
        }
        Node p = v.producer();
        if (p != null && p.opType().equals("Constant") && p.domain().isEmpty()) {
            Attribute a = p.attribute("value");
            if (a != null && a.kind() == Attribute.Kind.TENSOR) {
                return a.asTensor();
            }
            if (p.attribute("value_ints") != null) {
                long[] ints = p.attribute("value_ints").asInts();
                return Tensor.ofLongs(ints, ints.length);
            }
            if (p.attribute("value_int") != null) {
                return Tensor.scalar(p.attribute("value_int").asInt());
            }
        }
        return null;
    }
}
