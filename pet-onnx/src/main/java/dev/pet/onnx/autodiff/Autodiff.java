package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Reverse-mode automatic differentiation over an ONNX graph. Appends to the graph the backward nodes, built from
 * standard ONNX ops only, that compute the gradient of a scalar loss with respect to chosen trainable tensors
 * (initializers or graph inputs).
 *
 * <p>Only nodes that lie both downstream of a trainable and upstream of the loss get gradients, so frozen weights
 * never do. Integer and boolean values, shape computations ({@code Shape}, {@code Range}, comparisons, ...) and
 * index inputs stop gradients. A value read by several nodes gets its contributions summed by one {@code Sum}.
 * A node on the gradient path whose op has no rule is an {@link OnnxException} naming the node.
 *
 * <p>Some rules reuse forward results that a node may not output yet: LayerNormalization's Mean and InvStdDev,
 * Dropout's mask and SoftmaxCrossEntropyLoss's log-probabilities. Those optional outputs are added to the node.
 */
public final class Autodiff {
    /** Ops whose outputs carry no gradient whatever their inputs (shape, comparison and rounding ops). */
    private static final Set<String> NON_DIFFERENTIABLE = Set.of("Shape", "Size", "ConstantOfShape", "Range",
            "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf",
            "ArgMax", "ArgMin", "NonZero", "Sign", "Floor", "Ceil", "Round", "RandomUniformLike",
            "RandomNormalLike", "EyeLike", "Bernoulli", "Multinomial");

    private final GradientRegistry registry;
    private final Recompute recompute;

    /** Autodiff with {@code registry}'s rules, recomputing nothing ({@link Recompute#NONE}). */
    public Autodiff(GradientRegistry registry) {
        this(registry, Recompute.NONE);
    }

    public Autodiff(GradientRegistry registry, Recompute recompute) {
        this.registry = Objects.requireNonNull(registry, "registry");
        this.recompute = Objects.requireNonNull(recompute, "recompute");
    }

    /** Differentiates with the standard rules; see {@link #backward(Graph, int, Value, Collection)}. */
    public static Gradients differentiate(Graph graph, int opset, Value loss, Collection<Value> trainables) {
        return differentiate(graph, opset, loss, trainables, Recompute.NONE);
    }

    /** Differentiates with the standard rules, recomputing what {@code recompute} says. */
    public static Gradients differentiate(Graph graph, int opset, Value loss, Collection<Value> trainables,
            Recompute recompute) {
        return new Autodiff(GradientRegistry.standard(), recompute).backward(graph, opset, loss, trainables);
    }

    /**
     * The gradients of {@code loss} with respect to {@code trainables}, by trainable name in the order given (zeros
     * for a trainable the loss does not depend on); see {@link #backward}.
     */
    public static Map<String, Value> gradients(Graph graph, Value loss, Collection<Value> trainables, int opset) {
        return differentiate(graph, opset, loss, trainables).byName();
    }

    /** Op types (default domain) that have a built-in gradient rule. */
    public static Set<String> supportedOps() {
        return GradientRegistry.standard().opTypes();
    }

    /** Differentiates the named loss of a model with respect to the named trainables, at the model's opset. */
    public static Gradients differentiate(Model model, String loss, Collection<String> trainables) {
        Graph g = model.graph();
        List<Value> t = new ArrayList<>();
        for (String name : trainables) {
            t.add(g.requireValue(name));
        }
        return differentiate(g, (int) model.opset(), g.requireValue(loss), t);
    }

    /**
     * Appends the backward graph of {@code loss} and returns the gradient of every trainable (zeros for one the
     * loss does not depend on).
     */
    public Gradients backward(Graph graph, int opset, Value loss, Collection<Value> trainables) {
        Objects.requireNonNull(graph, "graph");
        Objects.requireNonNull(loss, "loss");
        Objects.requireNonNull(trainables, "trainables");
        int before = graph.nodes().size();
        ShapeInference.inferGraph(graph, opset);
        checkLoss(graph, loss);
        for (Value t : trainables) {
            checkTrainable(graph, t);
        }
        String lossName = loss.name();

        Analysis a = analyse(graph, loss, trainables);
        if (ForwardOutputs.ensure(graph, a.active, a.onPath, opset)) {
            a = analyse(graph, loss, trainables);
        }

        Recomputation recomputation = plan(graph, a);
        GraphBuilder b = new GraphBuilder(graph, opset);
        GradientContext ctx = new GradientContext(b, a.onPath);
        DataType lossType = GradientContext.floatType(loss);
        long[] lossShape = loss.type().isStatic() ? loss.type().shape() : new long[0];
        ctx.seed(loss, b.constant(Tensor.fromDoubles(lossType, new double[] {1.0}, lossShape)));
        for (int i = a.active.size() - 1; i >= 0; i--) {
            Node n = a.active.get(i);
            GradientRule rule = registry.rule(n.domain(), n.opType());
            if (rule == null) {
                throw new OnnxException("no gradient rule for " + n.describe() + " (op " + n.opType()
                        + "), which lies on the path from a trainable to the loss '" + lossName + "'");
            }
            if (n.outputs().stream().noneMatch(o -> o != null && ctx.hasGradient(o))) {
                continue;
            }
            String old = b.setScope("grad/" + (n.name().isEmpty() ? n.opType() : n.name()));
            try {
                rule.backward(recomputation.forBackward(n, ctx), ctx);
            } finally {
                b.setScope(old);
            }
        }
        Map<String, Value> out = new LinkedHashMap<>();
        b.setScope("grad");
        for (Value t : trainables) {
            Value g = ctx.grad(t);
            out.put(t.name(), g != null ? g : ctx.zeros(t));
        }
        b.setScope("");
        recomputation.removeUnusedCopies(graph);
        return new Gradients(out, graph.nodes().size() - before);
    }

    private Recomputation plan(Graph graph, Analysis a) {
        List<Recomputation.Region> regions = new ArrayList<>();
        List<String> bounds = recompute.boundaries();
        for (int i = 1; i < bounds.size(); i++) {
            regions.add(Recomputation.segment(graph, graph.requireValue(bounds.get(i - 1)),
                    graph.requireValue(bounds.get(i))));
        }
        for (Recompute.Segment s : recompute.segments()) {
            Recomputation.Region r = Recomputation.segment(graph, graph.requireValue(s.input()),
                    graph.requireValue(s.output()));
            regions.add(new Recomputation.Region(r.input(), r.output(), r.nodes(),
                    s.after() == null ? null : graph.requireValue(s.after())));
        }
        Set<Node> taken = new HashSet<>();
        regions.forEach(r -> taken.addAll(r.nodes()));
        if (recompute.activations()) {
            regions.addAll(Recomputation.activationRegions(a.active, a.onPath, taken));
        }
        return new Recomputation(regions);
    }

    private record Analysis(List<Node> active, Set<Value> onPath) {
    }

    private static Analysis analyse(Graph graph, Value loss, Collection<Value> trainables) {
        Set<Value> varying = new HashSet<>(trainables);
        List<Node> order = graph.topologicalOrder();
        for (Node n : order) {
            if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx") || !NON_DIFFERENTIABLE.contains(n.opType())) {
                boolean in = false;
                for (Value v : n.inputs()) {
                    in |= v != null && varying.contains(v);
                }
                if (in) {
                    for (Value o : n.outputs()) {
                        if (o != null && isFloatOrUnknown(o)) {
                            varying.add(o);
                        }
                    }
                }
            }
        }
        Set<Value> upstream = new HashSet<>();
        Deque<Value> work = new ArrayDeque<>(List.of(loss));
        while (!work.isEmpty()) {
            Value v = work.pop();
            if (!upstream.add(v)) {
                continue;
            }
            Node p = v.producer();
            if (p != null) {
                for (Value in : p.inputs()) {
                    if (in != null) {
                        work.push(in);
                    }
                }
            }
        }
        Set<Value> onPath = new HashSet<>();
        for (Value v : varying) {
            if (upstream.contains(v)) {
                onPath.add(v);
            }
        }
        List<Node> active = new ArrayList<>();
        for (Node n : order) {
            for (Value o : n.outputs()) {
                if (o != null && onPath.contains(o)) {
                    active.add(n);
                    break;
                }
            }
        }
        return new Analysis(active, onPath);
    }

    private static boolean isFloatOrUnknown(Value v) {
        DataType t = v.type().dataType();
        return t == null || t.isFloatingPoint();
    }

    private static void checkLoss(Graph graph, Value loss) {
        if (loss.graph() != graph) {
            throw new OnnxException("loss '" + loss.name() + "' belongs to another graph");
        }
        DataType t = loss.type().dataType();
        if (t == null || !t.isFloatingPoint()) {
            throw new OnnxException("loss '" + loss.name() + "' must be a floating-point scalar, found " + loss.type());
        }
        if (loss.type().isStatic() && Tensor.checkedElementCount(loss.type().shape()) != 1) {
            throw new OnnxException("loss '" + loss.name() + "' must be a scalar, found shape " + loss.type());
        }
        if (!loss.type().isStatic()) {
            throw new OnnxException("loss '" + loss.name() + "' must have a known scalar shape, found "
                    + loss.type());
        }
    }

    private static void checkTrainable(Graph graph, Value t) {
        if (t.graph() != graph) {
            throw new OnnxException("trainable '" + t.name() + "' belongs to another graph");
        }
        if (t.producer() != null || !(t.isInitializer() || t.isGraphInput())) {
            throw new OnnxException("trainable '" + t.name() + "' must be an initializer or graph input, but it is"
                    + " computed by " + (t.producer() == null ? "nothing" : t.producer().describe()));
        }
        DataType dt = t.type().dataType();
        if (dt == null || !dt.isFloatingPoint()) {
            throw new OnnxException("trainable '" + t.name() + "' must be floating point, found " + t.type());
        }
    }
}
