package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.IntegerLinears;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;

/**
 * The head region of a language model (the nodes from the final hidden state to the logits' last compute node) and
 * its copy per row chunk, for {@link CausalLmLoss} with {@link LossChunks}. A region is chunked only when each of
 * its nodes provably acts on every row (token) alone, so that running it on a slice of the rows gives that slice of
 * the result: ops from a fixed list, normalising and reducing over the last axis only, with constant other inputs
 * that do not vary along the rows. Anything else keeps the unchunked graph ({@link #analyse} says why).
 */
final class ChunkedHead {
    /** Ops that only move or rename data: the logits may be a reshape of the head's output. */
    private static final Set<String> RESHAPES = Set.of("Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze");
    /** Elementwise ops (with broadcasting): row-local when their constant inputs do not vary along the rows. */
    private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Neg", "Tanh",
            "Sigmoid", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Relu", "Gelu", "Cast", "Identity", "Abs",
            "Softplus", "Max", "Min");
    /** Reductions: row-local when they reduce over the last axis only. */
    private static final Set<String> REDUCTIONS = Set.of("ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceMax",
            "ReduceMin", "ReduceL2", "ReduceLogSumExp");
    private static final Set<String> LAST_AXIS = Set.of("LayerNormalization", "SimplifiedLayerNormalization",
            "RMSNormalization", "Softmax", "LogSoftmax");
    private static final Set<String> NONDETERMINISTIC = Set.of("Dropout", "RandomUniformLike", "RandomNormalLike",
            "RandomUniform", "RandomNormal", "Bernoulli", "Multinomial");
    private static final String MS_DOMAIN = "com.microsoft";

    /**
     * A chunkable head: {@code nodes} (topological) compute {@code headOut} from {@code hidden}; {@code reshapes}
     * turn {@code headOut} into the logits and are dropped with the region.
     */
    record Plan(Value hidden, Value headOut, List<Node> nodes, List<Node> reshapes) {
    }

    /** A plan, or the reason the head cannot be chunked. */
    record Analysis(Plan plan, String reason) {
    }

    private ChunkedHead() {
    }

    /** Finds the head region from {@code hidden} to {@code logits}; call before the model's inputs are rewired. */
    static Analysis analyse(Graph graph, int opset, String hiddenName, Value logits) {
        Value hidden = graph.value(hiddenName);
        if (hidden == null) {
            throw new OnnxException("loss chunks: the graph has no value '" + hiddenName + "' (the hidden state"
                    + " entering the head)");
        }
        ShapeInference.inferGraph(graph, opset);
        if (!logits.uses().isEmpty()) {
            return why("the logits '" + logits.name() + "' are also read by " + logits.uses().get(0).describe());
        }
        List<Node> reshapes = new ArrayList<>();
        Value headOut = logits;
        while (headOut.producer() != null && RESHAPES.contains(headOut.producer().opType())
                && headOut.producer().domain().isEmpty() && headOut != hidden) {
            Node p = headOut.producer();
            reshapes.add(p);
            headOut = p.input(0);
            if (headOut.uses().size() != 1 || headOut.isGraphOutput()) {
                return why("'" + headOut.name() + "' is read by more than the reshapes to the logits");
            }
        }
        if (headOut == hidden) {
            return why("the logits are a reshape of '" + hiddenName + "': there is no head to chunk");
        }
        List<Node> nodes = region(graph, hidden, headOut);
        if (nodes.isEmpty()) {
            return why("the logits are not computed from '" + hiddenName + "'");
        }
        Set<Node> members = Collections.newSetFromMap(new IdentityHashMap<>());
        members.addAll(nodes);
        Set<Value> data = dataDependent(graph);
        for (Node n : nodes) {
            if (NONDETERMINISTIC.contains(n.opType())) {
                return why(n.describe() + " draws random numbers: its chunks would not reproduce one draw");
            }
            for (Value in : n.inputs()) {
                boolean inside = in == hidden || in != null && members.contains(in.producer());
                if (in != null && !inside && data.contains(in)) {
                    return why(n.describe() + " reads '" + in.name() + "', which depends on the model's inputs");
                }
            }
            for (Value out : n.outputs()) {
                if (out == null || out == headOut) {
                    continue;
                }
                if (out.isGraphOutput() || out.uses().stream().anyMatch(u -> !members.contains(u))) {
                    return why("'" + out.name() + "' inside the head is also read outside it");
                }
            }
            String notLocal = rowLocal(n, members, hidden, opset);
            if (notLocal != null) {
                return why(notLocal);
            }
        }
        if (!hidden.type().hasRank() || hidden.type().rank() < 2 || !headOut.type().hasRank()
                || headOut.type().rank() < 2) {
            return why("the ranks of '" + hiddenName + "' and '" + headOut.name() + "' are not known (need 2 or more)");
        }
        return new Analysis(new Plan(hidden, headOut, List.copyOf(nodes), List.copyOf(reshapes)), null);
    }

    private static Analysis why(String reason) {
        return new Analysis(null, reason);
    }

    /**
     * Replaces the head by {@code count} copies, one per row chunk, each followed by {@code perToken} (flat logits
     * [rows, V], that chunk's labels) → the chunk's per-token losses; returns them concatenated [B·S] in row order.
     * Each chunk becomes a {@link Recompute.Segment} (its rows to its losses) that waits for the next chunk's
     * gradient, added to {@code segments}.
     */
    static Value build(GraphBuilder b, Plan p, int count, Value flatLabels, BiFunction<Value, Value, Value> perToken,
            List<Recompute.Segment> segments) {
        Graph g = p.hidden().graph();
        int rank = p.hidden().type().rank();
        Dim width = p.hidden().type().dims().get(rank - 1);
        Value flat = rank == 2 ? p.hidden() : b.flatten(p.hidden(), rank - 1);
        // chunk sizes min(max(N - c·s, 0), s) with s = ceil(N / count): any N, empty chunks when N < count
        Value n = b.shape(flat, 0, 1);
        Value size = b.div(b.add(n, b.ints(count - 1)), b.ints(count));
        long[] index = new long[count];
        for (int c = 0; c < count; c++) {
            index[c] = c;
        }
        Value left = b.max(b.sub(n, b.mul(size, b.ints(index))), b.ints(0));
        // min(left, s) as s - max(s - left, 0): ONNX Runtime's CUDA provider has no Min kernel (Max it has)
        Value sizes = b.sub(size, b.max(b.sub(size, left), b.ints(0)));
        List<Value> rows = b.node("Split", "", List.of(flat, sizes), count, Attribute.of("axis", 0L)).outputs();
        List<Value> labels = b.node("Split", "", List.of(flatLabels, sizes), count, Attribute.of("axis", 0L))
                .outputs();
        List<Value> losses = new ArrayList<>();
        String scope = b.setScope("");
        for (int c = 0; c < count; c++) {
            b.setScope(scope + "/chunk" + c);
            Value chunk = rows.get(c);
            // one symbolic row count per chunk, so gradient rules see that the chunk's tensors agree in size
            Dim chunkRows = Dim.symbol(g.uniqueName("loss_chunk" + c + "_rows"));
            chunk.setType(new TensorType(p.hidden().type().dataType(), List.of(chunkRows, width)));
            labels.get(c).setType(new TensorType(flatLabels.type().dataType(), List.of(chunkRows)));
            Value in = chunk;
            if (rank > 2) {
                long[] lead = new long[rank - 2];
                for (int i = 0; i < lead.length; i++) {
                    lead[i] = i;
                }
                in = b.unsqueeze(chunk, lead);
            }
            Value out = copy(g, b, p, in, c, chunkRows);
            int outRank = p.headOut().type().rank();
            Value flatLogits = outRank == 2 ? out : b.flatten(out, outRank - 1);
            losses.add(perToken.apply(flatLogits, labels.get(c)));
        }
        b.setScope(scope);
        for (int c = 0; c < count; c++) {
            segments.add(new Recompute.Segment(rows.get(c).name(), losses.get(c).name(),
                    c + 1 < count ? rows.get(c + 1).name() : null));
        }
        Value all = b.concat(losses, 0);
        // all the rows again: the labels' size, so the mask product's gradient needs no broadcast check
        if (flatLabels.type().hasRank() && all.type().dataType() != null) {
            all.setType(new TensorType(all.type().dataType(), flatLabels.type().dims()));
        }
        for (Node r : p.reshapes()) {
            g.removeNode(r);
        }
        for (int i = p.nodes().size() - 1; i >= 0; i--) {
            g.removeNode(p.nodes().get(i));
        }
        return all;
    }

    /** One copy of the region reading {@code in} for the hidden state; returns the copy of the head's output. */
    private static Value copy(Graph g, GraphBuilder b, Plan p, Value in, int chunk, Dim chunkRows) {
        Map<Value, Value> renamed = new HashMap<>();
        renamed.put(p.hidden(), in);
        for (Node n : p.nodes()) {
            String base = n.name().isEmpty() ? n.opType() : n.name();
            Node c = g.addCopy(n, renamed, base + "/chunk" + chunk, "/chunk" + chunk);
            for (int i = 0; i < n.outputs().size(); i++) {
                if (n.output(i) != null) {
                    c.output(i).setType(chunkType(n.output(i).type(), chunkRows));
                }
            }
            ShapeInference.infer(c, b.opset());
        }
        return renamed.get(p.headOut());
    }

    /**
     * The type of a chunk's copy of a region value of type {@code t}: a row-local region fed [1, …, 1, rows, E]
     * keeps that form, [1, …, 1, rows, last dimension of t] (or [rows] where it reduced the last axis away).
     */
    private static TensorType chunkType(TensorType t, Dim rows) {
        if (!t.hasRank() || t.rank() == 0) {
            return t;
        }
        if (t.rank() == 1) {
            return new TensorType(t.dataType(), List.of(rows));
        }
        List<Dim> dims = new ArrayList<>(Collections.nCopies(t.rank() - 2, Dim.of(1)));
        dims.add(rows);
        dims.add(t.dims().get(t.rank() - 1));
        return new TensorType(t.dataType(), dims);
    }

    /** Nodes downstream of {@code from} and upstream of {@code to}, in topological order. */
    private static List<Node> region(Graph graph, Value from, Value to) {
        Set<Node> downstream = Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<Value> work = new ArrayDeque<>(List.of(from));
        while (!work.isEmpty()) {
            for (Node u : work.pop().uses()) {
                if (downstream.add(u)) {
                    u.outputs().stream().filter(v -> v != null).forEach(work::push);
                }
            }
        }
        Set<Node> upstream = Collections.newSetFromMap(new IdentityHashMap<>());
        work.push(to);
        while (!work.isEmpty()) {
            Node p = work.pop().producer();
            if (p != null && downstream.contains(p) && upstream.add(p)) {
                p.inputs().stream().filter(v -> v != null && v != from).forEach(work::push);
            }
        }
        List<Node> out = new ArrayList<>();
        for (Node n : graph.topologicalOrder()) {
            if (upstream.contains(n)) {
                out.add(n);
            }
        }
        return out;
    }

    /** Values computed from the model's data inputs (graph inputs that are not initializers). */
    private static Set<Value> dataDependent(Graph graph) {
        Set<Value> data = new HashSet<>();
        for (Value in : graph.inputs()) {
            if (!in.isInitializer()) {
                data.add(in);
            }
        }
        for (Node n : graph.topologicalOrder()) {
            if (n.inputs().stream().anyMatch(data::contains)) {
                n.outputs().stream().filter(v -> v != null).forEach(data::add);
            }
        }
        return data;
    }

    /** Null when {@code n} computes each row of its output from the same row of its region input alone. */
    private static String rowLocal(Node n, Set<Node> members, Value hidden, int opset) {
        String op = n.opType();
        boolean standard = n.domain().isEmpty() || n.domain().equals("ai.onnx");
        Value x = n.input(0);
        int rank = x != null && x.type().hasRank() ? x.type().rank() : -1;
        String unknown = n.describe() + " is not known to act on each row (token) alone";
        if (rank < 0) {
            return "the rank of '" + (x == null ? "?" : x.name()) + "' read by " + n.describe() + " is not known";
        }
        if (standard && ELEMENTWISE.contains(op)) {
            for (Value in : n.inputs()) {
                if (in != null && !inside(in, members, hidden) && !constantAlongRows(in, n)) {
                    return n.describe() + " broadcasts '" + in.name() + "', which may vary along the rows";
                }
            }
            return null;
        }
        if (standard && op.equals("Flatten")) {
            return normalise(n.intAttr("axis", 1), rank) == rank - 1 ? null : unknown;
        }
        if (standard && LAST_AXIS.contains(op) || n.domain().equals(MS_DOMAIN)
                && op.equals("SimplifiedLayerNormalization")) {
            long def = op.endsWith("Softmax") && opset < 13 ? 1 : -1;
            return normalise(n.intAttr("axis", def), rank) == rank - 1 && onlyFirstInside(n, members, hidden)
                    ? null : unknown;
        }
        if (standard && REDUCTIONS.contains(op)) {
            long[] axes = n.attribute("axes") != null ? n.intsAttr("axes", null)
                    : n.inputCount() > 1 && n.input(1) != null ? ShapeInference.constantInts(n.input(1)) : null;
            boolean last = axes != null && axes.length == 1 && normalise(axes[0], rank) == rank - 1;
            return last ? null : unknown;
        }
        if (standard && op.equals("Gemm")) {
            return n.intAttr("transA", 0) == 0 && onlyFirstInside(n, members, hidden) ? null : unknown;
        }
        if (standard && op.equals("MatMul")) {
            Value w = n.input(1);
            return onlyFirstInside(n, members, hidden) && w.type().hasRank() && w.type().rank() == 2 ? null
                    : unknown;
        }
        // kernel matmul_integer's product scales each row of its input on its own, so it is row-local too
        if (n.domain().equals(MS_DOMAIN) && op.equals("MatMulNBits") || IntegerLinears.isProduct(n)) {
            return onlyFirstInside(n, members, hidden) ? null : unknown;
        }
        return unknown;
    }

    private static boolean inside(Value v, Set<Node> members, Value hidden) {
        return v == hidden || members.contains(v.producer());
    }

    /** Only input 0 comes from the region: the others (weights, scales, biases) are shared by every row. */
    private static boolean onlyFirstInside(Node n, Set<Node> members, Value hidden) {
        for (int i = 1; i < n.inputCount(); i++) {
            Value in = n.input(i);
            if (in != null && inside(in, members, hidden)) {
                return false;
            }
        }
        return true;
    }

    /** An outside input of elementwise {@code n} of known shape whose every dimension but the last is 1. */
    private static boolean constantAlongRows(Value in, Node n) {
        TensorType t = in.type();
        if (!t.hasRank()) {
            return false;
        }
        Value out = n.output(0);
        if (out.type().hasRank() && t.rank() > out.type().rank()) {
            return false;
        }
        for (int i = 0; i < t.rank() - 1; i++) {
            Dim d = t.dims().get(i);
            if (!d.isFixed() || d.value() != 1) {
                return false;
            }
        }
        return true;
    }

    private static long normalise(long axis, int rank) {
        return axis < 0 ? axis + rank : axis;
    }
}
