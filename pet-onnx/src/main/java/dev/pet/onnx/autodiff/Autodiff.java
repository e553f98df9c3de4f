package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reverse-mode automatic differentiation over ONNX graphs, emitting standard ONNX ops into the same graph.
 *
 * <p>Only <em>active</em> nodes get gradients: those downstream of a trainable value through floating-point edges
 * and upstream of the loss. Frozen weights, integer and boolean paths (shapes, indices, masks) never produce
 * gradient nodes, which is where most of the backward work of a LoRA fine-tune is saved. A value read by several
 * nodes has its gradient contributions summed once.
 */
public final class Autodiff {
    private static final Map<String, GradientRule> RULES = new HashMap<>();

    static {
        ElementwiseRules.register(RULES);
        LinearAlgebraRules.register(RULES);
        ShapeRules.register(RULES);
        NormalizationRules.register(RULES);
    }

    private Autodiff() {
    }

    /** Op types (default domain) that have a gradient rule. */
    public static Set<String> supportedOps() {
        return Collections.unmodifiableSet(RULES.keySet());
    }

    /**
     * Appends the backward pass for {@code loss} (a scalar) with respect to {@code trainables} and returns their
     * gradients, keyed by trainable name, in the order given. A trainable the loss does not depend on is an error.
     */
    public static Map<String, Value> gradients(Graph graph, Value loss, Collection<Value> trainables, int opset) {
        GraphBuilder b = new GraphBuilder(graph, opset);
        String oldScope = b.setScope("grad");
        try {
            return new Pass(graph, b, loss, trainables).run();
        } finally {
            b.setScope(oldScope);
        }
    }

    private static final class Pass {
        private final Graph graph;
        private final GraphBuilder b;
        private final Value loss;
        private final List<Value> trainables;
        private final Set<Value> active = Collections.newSetFromMap(new IdentityHashMap<>());
        private final Map<Value, List<Value>> contributions = new IdentityHashMap<>();

        Pass(Graph graph, GraphBuilder b, Value loss, Collection<Value> trainables) {
            this.graph = graph;
            this.b = b;
            this.loss = loss;
            this.trainables = List.copyOf(trainables);
        }

        Map<String, Value> run() {
            if (loss.type().dataType() == null || !loss.type().dataType().isFloatingPoint()) {
                throw new OnnxException("loss '" + loss.name() + "' must be a floating-point scalar, found "
                        + loss.type());
            }
            if (loss.type().hasRank() && loss.type().rank() > 0 && !(loss.type().isStatic()
                    && Tensor.checkedElementCount(loss.type().shape()) == 1)) {
                throw new OnnxException("loss '" + loss.name() + "' must be a scalar, found " + loss.type());
            }
            markActive();
            List<Node> order = graph.topologicalOrder();
            Set<Node> activeNodes = Collections.newSetFromMap(new IdentityHashMap<>());
            for (Node n : order) {
                if (isActive(n)) {
                    activeNodes.add(n);
                }
            }
            DataType lt = loss.type().dataType();
            Value seed = b.constant(Tensor.fromDoubles(lt, new double[] {1},
                    loss.type().hasRank() ? loss.type().shape() : new long[0]));
            contributions.computeIfAbsent(loss, k -> new ArrayList<>()).add(seed);

            for (int i = order.size() - 1; i >= 0; i--) {
                Node n = order.get(i);
                if (!activeNodes.contains(n)) {
                    continue;
                }
                List<Value> outGrads = new ArrayList<>();
                boolean any = false;
                for (Value out : n.outputs()) {
                    Value g = out == null ? null : accumulated(out);
                    outGrads.add(g);
                    any |= g != null;
                }
                if (!any) {
                    continue;
                }
                boolean[] needs = new boolean[n.inputCount()];
                for (int k = 0; k < needs.length; k++) {
                    Value in = n.input(k);
                    needs[k] = in != null && active.contains(in);
                }
                GradientRule rule = n.domain().isEmpty() || n.domain().equals("ai.onnx") ? RULES.get(n.opType())
                        : null;
                if (rule == null) {
                    throw new OnnxException("no gradient rule for " + n.describe() + " on the path from the "
                            + "trainable tensors to the loss; supported ops: " + new java.util.TreeSet<>(RULES.keySet()));
                }
                String scope = b.setScope("grad/" + (n.name().isEmpty() ? n.opType() : n.name()));
                List<Value> inGrads;
                try {
                    inGrads = rule.apply(new GradContext(n, outGrads, needs, b));
                } finally {
                    b.setScope(scope);
                }
                for (int k = 0; k < needs.length; k++) {
                    if (needs[k] && k < inGrads.size() && inGrads.get(k) != null) {
                        contributions.computeIfAbsent(n.input(k), v -> new ArrayList<>()).add(inGrads.get(k));
                    }
                }
            }

            Map<String, Value> result = new LinkedHashMap<>();
            for (Value t : trainables) {
                Value g = accumulated(t);
                if (g == null) {
                    throw new OnnxException("the loss '" + loss.name() + "' does not depend on trainable tensor '"
                            + t.name() + "'");
                }
                result.put(t.name(), g);
            }
            return result;
        }

        /** The summed gradient of a value: one Sum node for fan-out, computed once. */
        private Value accumulated(Value v) {
            List<Value> parts = contributions.get(v);
            if (parts == null || parts.isEmpty()) {
                return null;
            }
            if (parts.size() > 1) {
                Value sum = b.sum(parts);
                sum.setType(v.type());
                parts.clear();
                parts.add(sum);
            }
            return parts.get(0);
        }

        /** Active values: floating-point values downstream of a trainable and upstream of the loss. */
        private void markActive() {
            Set<Value> varying = Collections.newSetFromMap(new IdentityHashMap<>());
            Deque<Value> work = new ArrayDeque<>();
            for (Value t : trainables) {
                if (t.graph() != graph) {
                    throw new OnnxException("trainable '" + t.name() + "' belongs to another graph");
                }
                DataType dt = t.type().dataType();
                if (dt == null || !dt.isFloatingPoint()) {
                    throw new OnnxException("trainable '" + t.name() + "' must be floating-point, found " + t.type());
                }
                varying.add(t);
                work.add(t);
            }
            while (!work.isEmpty()) {
                Value v = work.pop();
                for (Node user : v.uses()) {
                    for (Value out : user.outputs()) {
                        if (out != null && isFloat(out) && varying.add(out)) {
                            work.add(out);
                        }
                    }
                }
            }
            Set<Value> useful = Collections.newSetFromMap(new IdentityHashMap<>());
            work.add(loss);
            useful.add(loss);
            while (!work.isEmpty()) {
                Value v = work.pop();
                Node p = v.producer();
                if (p == null) {
                    continue;
                }
                for (Value in : p.inputs()) {
                    if (in != null && useful.add(in)) {
                        work.add(in);
                    }
                }
            }
            for (Value v : varying) {
                if (useful.contains(v)) {
                    active.add(v);
                }
            }
        }

        private boolean isActive(Node n) {
            boolean in = false;
            for (Value v : n.inputs()) {
                in |= v != null && active.contains(v);
            }
            if (!in) {
                return false;
            }
            for (Value v : n.outputs()) {
                if (v != null && active.contains(v)) {
                    return true;
                }
            }
            return false;
        }

        private static boolean isFloat(Value v) {
            DataType dt = v.type().dataType();
            // Unknown types are assumed differentiable; the rule will fail clearly if they are not.
            return dt == null || dt.isFloatingPoint();
        }
    }
}
