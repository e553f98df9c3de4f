package dev.pet.onnx.io;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.AttributeProto;
import dev.pet.onnx.proto.OnnxProto.GraphProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Graph-valued attributes (the branches of {@code If}, the body of {@code Loop}/{@code Scan}), which the IR keeps as
 * their protobuf message ({@link Attribute.Kind#RAW}): writing an IR graph into one, reading one back as an IR graph,
 * and inlining the branch an {@code If} takes when its condition is known (Optimum's merged decoder selects its
 * with-past or no-past decoder with one).
 */
public final class Subgraphs {
    private Subgraphs() {
    }

    /** A GRAPH attribute holding {@code body} (its initializers inline), as {@code If}'s branches are. */
    public static Attribute attribute(String name, Graph body) {
        AttributeProto ap = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH)
                .setG(GraphWriter.graph(body, TensorCodec::inline)).build();
        return new Attribute(name, Attribute.Kind.RAW, ap);
    }

    /**
     * The graph in attribute {@code name} of {@code node} as an IR graph; names it reads from the enclosing scope are
     * values without a producer. Fails naming the node when the attribute is absent or not a graph, or when a tensor
     * of the subgraph keeps its data in an external file (Optimum keeps the shared weights in the outer graph).
     */
    public static Graph read(Node node, String name) {
        Attribute a = node.attribute(name);
        if (a == null || a.kind() != Attribute.Kind.RAW || !(a.value() instanceof AttributeProto ap)
                || !ap.hasG()) {
            throw new OnnxException("node '" + node.name() + "' (" + node.opType() + "): attribute '" + name
                    + "' is " + (a == null ? "missing" : "not a graph") + "; expected a subgraph");
        }
        GraphProto gp = ap.getG();
        return GraphReader.graph(gp, tp -> {
            throw new OnnxException("node '" + node.name() + "': tensor '" + tp.getName() + "' of subgraph '"
                    + name + "' keeps its data in an external file; only the outer graph's initializers may");
        });
    }

    /**
     * Replaces {@code ifNode} by the nodes of its branch {@code then_branch} ({@code taken} true) or
     * {@code else_branch}: the branch's initializers become initializers of the graph, its outer-scope reads resolve
     * to the graph's values, and each output of the {@code If} is produced by an Identity of the branch's output, so
     * its name and readers stay. Node and value names are kept where free (node scopes name modules). Returns the
     * branch as read, for its names and types. Fails naming the node when the branch's outputs do not match the
     * node's, or when the branch reads a name the graph does not define.
     */
    public static Graph inlineIf(Node ifNode, boolean taken) {
        if (!ifNode.opType().equals("If")) {
            throw new OnnxException("node '" + ifNode.name() + "' is " + ifNode.opType() + ", not If");
        }
        Graph g = ifNode.graph();
        String attr = taken ? "then_branch" : "else_branch";
        Graph branch = read(ifNode, attr);
        if (branch.outputs().size() != ifNode.outputs().size()) {
            throw new OnnxException("If node '" + ifNode.name() + "': " + attr + " has " + branch.outputs().size()
                    + " outputs, the node " + ifNode.outputs().size());
        }
        Map<Value, Value> mapped = new HashMap<>();
        for (Map.Entry<String, dev.pet.onnx.tensor.Tensor> e : branch.initializers().entrySet()) {
            String n = g.value(e.getKey()) == null ? e.getKey() : g.uniqueName(e.getKey());
            mapped.put(branch.value(e.getKey()), g.setInitializer(n, e.getValue()));
        }
        List<Node> order = branch.topologicalOrder();
        for (Node n : order) {
            for (Value out : n.outputs()) {
                if (out != null) {
                    String name = g.value(out.name()) == null ? out.name() : g.uniqueName(out.name());
                    mapped.put(out, g.newValue(name, out.type()));
                }
            }
        }
        for (Node n : order) {
            List<Value> ins = new ArrayList<>();
            for (Value in : n.inputs()) {
                ins.add(in == null ? null : outer(g, ifNode, attr, mapped, in));
            }
            List<Value> outs = n.outputs().stream().map(v -> v == null ? null : mapped.get(v)).toList();
            Node copy = g.addNodeWithOutputs(n.opType(), n.domain(), g.uniqueNodeName(n.name()), ins, outs,
                    n.attributes().values());
            copy.setResidual(n.residual());
        }
        List<Value> results = new ArrayList<>();
        for (int i = 0; i < ifNode.outputs().size(); i++) {
            Value want = ifNode.output(i);
            Value got = branch.outputs().get(i);
            TensorType a = want == null ? TensorType.unknown() : want.type();
            TensorType b = got.type();
            if (a.dataType() != null && b.dataType() != null && a.dataType() != b.dataType()
                    || a.hasRank() && b.hasRank() && a.rank() != b.rank()) {
                throw new OnnxException("If node '" + ifNode.name() + "': output " + i + " '" + name(want) + "' is "
                        + a + " but " + attr + " output '" + got.name() + "' is " + b);
            }
            results.add(outer(g, ifNode, attr, mapped, got));
        }
        // Each output's readers (and graph outputs) move to an Identity of the branch's result, which then takes
        // the output's name.
        List<Value> identities = new ArrayList<>();
        for (int i = 0; i < ifNode.outputs().size(); i++) {
            Value out = ifNode.output(i);
            if (out == null) {
                identities.add(null);
                continue;
            }
            Value id = g.addNode("Identity", "", g.uniqueNodeName(ifNode.name() + "/" + attr + "/output_" + i),
                    List.of(results.get(i)), List.of(g.uniqueName(out.name() + "/inlined")), List.of()).output(0);
            id.setType(out.type().hasRank() || out.type().dataType() != null ? out.type() : results.get(i).type());
            g.replaceAllUses(out, id);
            identities.add(id);
        }
        List<String> names = ifNode.outputs().stream().map(v -> v == null ? null : v.name()).toList();
        g.removeNode(ifNode);
        for (int i = 0; i < names.size(); i++) {
            if (identities.get(i) != null) {
                identities.get(i).rename(names.get(i));
            }
        }
        return branch;
    }

    private static String name(Value v) {
        return v == null ? "" : v.name();
    }

    /** The graph's value for {@code v} of the branch: copied, or the enclosing scope's value of that name. */
    private static Value outer(Graph g, Node ifNode, String attr, Map<Value, Value> mapped, Value v) {
        Value m = mapped.get(v);
        if (m != null) {
            return m;
        }
        Value o = g.value(v.name());
        if (o == null || o.producer() == null && !o.isGraphInput() && !o.isInitializer()) {
            throw new OnnxException("If node '" + ifNode.name() + "': " + attr + " reads '" + v.name()
                    + "', which the enclosing graph does not define");
        }
        return o;
    }
}
