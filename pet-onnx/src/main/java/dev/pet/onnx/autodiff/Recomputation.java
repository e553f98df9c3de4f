package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Forward regions whose inner values the backward pass recomputes from the region's one input instead of keeping
 * them alive from the forward pass (gradient checkpointing). When the backward pass reaches a region, its nodes
 * are copied, reading the input through a barrier that depends on the gradient of the region's output, and the
 * gradient rules run on the copies: the copies cannot run before the backward pass gets there (nor be merged
 * with the originals by common-subexpression elimination), and the originals' inner values die in the forward
 * pass. Results are identical: the copies are the same ops on the same values.
 *
 * <p>Two kinds of region: composed activation functions ({@link #activationRegions}: a chain of elementwise ops
 * on one varying value and constants, like GPT-2's tanh-GELU or SiLU, whose standard rules would keep several
 * intermediates of the activation's size) and segments between given values (transformer blocks).
 */
final class Recomputation {
    /** Ops that act elementwise; with constant (non-varying) other inputs they may join an activation region. */
    private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Neg", "Tanh",
            "Sigmoid", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Relu", "Sin", "Cos", "Gelu");
    /** Ops whose result differs between runs on the same inputs: a copy would not reproduce them. */
    private static final Set<String> NONDETERMINISTIC = Set.of("Dropout", "RandomUniformLike", "RandomNormalLike",
            "RandomUniform", "RandomNormal", "Bernoulli", "Multinomial");

    /**
     * A region: its nodes in topological order, computed from {@code input} (outside) up to {@code output}; its
     * recomputation waits for the gradients of {@code output} and, when not null, of {@code after}.
     */
    record Region(Value input, Value output, List<Node> nodes, Value after) {
        Region(Value input, Value output, List<Node> nodes) {
            this(input, output, nodes, null);
        }
    }

    private final Map<Node, Region> regionOf = new IdentityHashMap<>();
    private final Map<Region, Map<Node, Node>> copies = new HashMap<>();

    Recomputation(List<Region> regions) {
        for (Region r : regions) {
            for (Node n : r.nodes()) {
                if (regionOf.putIfAbsent(n, r) != null) {
                    throw new OnnxException("recomputation regions overlap at " + n.describe());
                }
            }
        }
    }

    /**
     * Composed activations among the active nodes: maximal sets of elementwise nodes whose only varying input
     * from outside is one value and whose inner values are read only inside the set, of at least two nodes. Nodes
     * already in {@code taken} are skipped.
     */
    static List<Region> activationRegions(List<Node> active, Set<Value> onPath, Set<Node> taken) {
        Map<Node, Integer> position = new IdentityHashMap<>();
        for (int i = 0; i < active.size(); i++) {
            position.put(active.get(i), i);
        }
        Set<Node> used = new HashSet<>(taken);
        List<Region> regions = new ArrayList<>();
        for (int i = active.size() - 1; i >= 0; i--) {
            Node last = active.get(i);
            if (used.contains(last) || !elementwise(last) || last.outputs().size() != 1) {
                continue;
            }
            // the largest set of elementwise nodes feeding `last` whose inner values nothing else reads
            Set<Node> closed = new LinkedHashSet<>(List.of(last));
            boolean grown = true;
            while (grown) {
                grown = false;
                for (Node m : List.copyOf(closed)) {
                    for (Value in : m.inputs()) {
                        Node p = in == null ? null : in.producer();
                        if (p != null && !closed.contains(p) && !used.contains(p) && onPath.contains(in)
                                && elementwise(p) && p.outputs().size() == 1 && !in.isGraphOutput()
                                && closed.containsAll(in.uses())) {
                            closed.add(p);
                            grown = true;
                        }
                    }
                }
            }
            List<Node> ordered = new ArrayList<>(closed);
            ordered.sort((a, b) -> Integer.compare(position.getOrDefault(a, -1), position.getOrDefault(b, -1)));
            // of it, the part computed from one value alone, for the value that gives the largest part
            Set<Value> candidates = new LinkedHashSet<>(externalInputs(closed, onPath));
            ordered.forEach(n -> candidates.add(n.output(0)));
            List<Node> best = List.of();
            Value bestInput = null;
            for (Value x : candidates) {
                List<Node> part = computedFrom(ordered, x, onPath);
                if (part.size() > best.size() && part.get(part.size() - 1) == last) {
                    best = part;
                    bestInput = x;
                }
            }
            if (best.size() < 2 || !pays(best, bestInput, last, onPath)) {
                continue;
            }
            used.addAll(best);
            regions.add(new Region(bestInput, last.output(0), best));
        }
        return regions;
    }

    /**
     * The segment from {@code input} to {@code output}: every node downstream of the input and upstream of the
     * output. Fails when the segment holds an op whose result a copy would not reproduce.
     */
    static Region segment(Graph graph, Value input, Value output) {
        Set<Node> downstream = new HashSet<>();
        Deque<Value> work = new ArrayDeque<>(List.of(input));
        while (!work.isEmpty()) {
            for (Node u : work.pop().uses()) {
                if (downstream.add(u)) {
                    u.outputs().stream().filter(v -> v != null).forEach(work::push);
                }
            }
        }
        Set<Node> upstream = new HashSet<>();
        work.push(output);
        while (!work.isEmpty()) {
            Node p = work.pop().producer();
            if (p != null && downstream.contains(p) && upstream.add(p)) {
                p.inputs().stream().filter(v -> v != null && v != input).forEach(work::push);
            }
        }
        if (!upstream.contains(output.producer())) {
            throw new OnnxException("recompute segment: '" + output.name() + "' is not computed from '"
                    + input.name() + "'");
        }
        List<Node> nodes = new ArrayList<>();
        for (Node n : graph.topologicalOrder()) {
            if (upstream.contains(n)) {
                if (NONDETERMINISTIC.contains(n.opType())) {
                    throw new OnnxException("recompute segment '" + input.name() + "' → '" + output.name()
                            + "' holds " + n.describe() + ", whose result a recomputation would not reproduce");
                }
                nodes.add(n);
            }
        }
        return new Region(input, output, nodes);
    }

    Set<Node> nodes() {
        return regionOf.keySet();
    }

    /**
     * The node whose gradient rule runs for {@code n}: {@code n} itself outside regions, else its copy, the region
     * being copied when the backward pass first reaches it (at its last node, when the output's gradient is
     * complete).
     */
    Node forBackward(Node n, GradientContext ctx) {
        Region r = regionOf.get(n);
        if (r == null) {
            return n;
        }
        Map<Node, Node> made = copies.get(r);
        if (made == null) {
            made = copy(r, ctx);
            copies.put(r, made);
        }
        return made.getOrDefault(n, n);
    }

    /** Removes copied nodes no rule read (copies of nodes whose rules needed none of their values). */
    void removeUnusedCopies(Graph graph) {
        for (Map<Node, Node> made : copies.values()) {
            List<Node> order = new ArrayList<>(made.values());
            for (int i = order.size() - 1; i >= 0; i--) {
                Node c = order.get(i);
                if (c.outputs().stream().allMatch(v -> v == null || v.uses().isEmpty() && !v.isGraphOutput())) {
                    graph.removeNode(c);
                }
            }
        }
    }

    private static Map<Node, Node> copy(Region r, GradientContext ctx) {
        Value gOut = ctx.grad(r.output());
        if (gOut == null) {
            return Map.of();
        }
        GraphBuilder b = ctx.builder();
        Graph g = r.input().graph();
        // input' = Reshape(input, Shape(input) ++ Shape(gOut)[0:0]): the same tensor, available only once the
        // output's gradient is (and the gradient of `after`, when given).
        List<Value> parts = new ArrayList<>(List.of(b.shape(r.input()), b.shape(gOut, 0, 0)));
        Value gAfter = r.after() == null ? null : ctx.grad(r.after());
        if (gAfter != null) {
            parts.add(b.shape(gAfter, 0, 0));
        }
        Value shape = b.concat(parts, 0);
        Value barrier = ctx.reshapeTo(r.input(), shape);
        barrier.setType(r.input().type());
        ctx.alias(barrier, r.input());
        Map<Value, Value> renamed = new HashMap<>();
        renamed.put(r.input(), barrier);
        Map<Node, Node> made = new java.util.LinkedHashMap<>();
        for (Node n : r.nodes()) {
            String base = n.name().isEmpty() ? n.opType() : n.name();
            Node c = g.addCopy(n, renamed, "recompute/" + base, "/recomputed");
            for (int i = 0; i < n.outputs().size(); i++) {
                Value out = n.output(i);
                if (out != null) {
                    c.output(i).setType(out.type());
                    ctx.alias(c.output(i), out);
                }
            }
            made.put(n, c);
        }
        return made;
    }

    /** The nodes of {@code ordered} (topological) whose varying inputs are {@code x} or outputs of such nodes. */
    private static List<Node> computedFrom(List<Node> ordered, Value x, Set<Value> onPath) {
        Set<Value> reached = new HashSet<>(List.of(x));
        List<Node> part = new ArrayList<>();
        for (Node n : ordered) {
            if (n.output(0) == x) {
                continue;
            }
            boolean ok = n.inputs().stream().anyMatch(reached::contains);
            for (Value in : n.inputs()) {
                ok &= in == null || !onPath.contains(in) || reached.contains(in);
            }
            if (ok) {
                part.add(n);
                reached.add(n.output(0));
            }
        }
        return part;
    }

    /**
     * Whether recomputing saves memory: the members' rules already keep the input (so keeping it for the copy
     * costs nothing) and keep at least one inner value (which recomputation frees). A region whose rules keep
     * nothing (a scale and a bias add) would only make its input live longer.
     */
    private static boolean pays(List<Node> members, Value input, Node last, Set<Value> onPath) {
        boolean inputKept = false;
        boolean innerKept = false;
        for (Node m : members) {
            inputKept |= keptByRule(m, input, onPath);
            for (Node p : members) {
                if (p != last) {
                    innerKept |= keptByRule(m, p.output(0), onPath);
                }
            }
        }
        return inputKept && innerKept;
    }

    /** Whether the gradient rule of elementwise {@code n} reads {@code v} (one of its inputs or its output). */
    private static boolean keptByRule(Node n, Value v, Set<Value> onPath) {
        boolean isInput0 = v == n.input(0);
        boolean isInput1 = n.inputs().size() > 1 && v == n.input(1);
        boolean isOutput = v == n.output(0);
        return switch (n.opType()) {
            case "Mul" -> isInput0 && onPath.contains(n.input(1)) || isInput1 && onPath.contains(n.input(0));
            case "Div" -> isInput1 || isOutput && onPath.contains(n.input(1));
            case "Pow" -> isInput0 || isOutput && onPath.contains(n.input(1));
            case "Tanh", "Sigmoid", "Exp", "Sqrt", "Reciprocal" -> isOutput;
            case "Erf", "Log", "Relu", "Sin", "Cos", "Gelu" -> isInput0;
            default -> false;
        };
    }

    private static boolean elementwise(Node n) {
        return (n.domain().isEmpty() || n.domain().equals("ai.onnx")) && ELEMENTWISE.contains(n.opType());
    }

    /** Varying values read by members that no member produces. */
    private static Set<Value> externalInputs(Set<Node> members, Set<Value> onPath) {
        Set<Value> out = new LinkedHashSet<>();
        for (Node m : members) {
            for (Value in : m.inputs()) {
                if (in != null && onPath.contains(in) && !members.contains(in.producer())) {
                    out.add(in);
                }
            }
        }
        return out;
    }
}
