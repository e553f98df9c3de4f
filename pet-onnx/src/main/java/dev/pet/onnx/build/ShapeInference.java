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
 * compute them in the graph. Unknown ops leave their outputs' types as they are. Each op's rule lives in
 * {@link ShapeRegistry} (one class per op family, opset-versioned); this class runs them over nodes and graphs and
 * holds the helpers they share.
 */
public final class ShapeInference {
    /** The built-in rules; read-only after construction, so shared. */
    private static final ShapeRegistry RULES = ShapeRegistry.standard();

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

    /**
     * The output types of a node by its op's rule at {@code opset}; empty (outputs left as declared) for ops of other
     * domains or without a rule.
     */
    static List<TensorType> inferTypes(Node n, int opset) {
        if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
            return List.of();
        }
        ShapeRule rule = RULES.rule(n.opType(), opset);
        return rule == null ? List.of() : rule.infer(n, opset);
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
