package dev.pet.api.onnximport;

import dev.pet.api.LinearModule;
import dev.pet.api.onnximport.DecoderLayout.ModulePath;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Linear recognition: {@code Gemm} nodes (either weight layout, {@code transB}) and {@code MatMul} nodes whose weight
 * is a 2-D initializer, directly or through {@code Transpose(perm=[1,0])}, with an optional bias {@code Add}. Each
 * is attributed to a module from its weight's state-dict name or, for weights an exporter renamed
 * ({@code onnx::MatMul_273}), from the node's scope ({@code /model/layers.0/self_attn/q_proj/MatMul}).
 */
final class LinearProjections {
    /** One recognised projection; {@code module} is null when neither name nor scope says which module it is. */
    record Projection(ModulePath module, Node node, Value weight, Value bias, Value input, Value output, long in,
            long out, boolean inOut) {
        String describe() {
            return node.describe() + ", weight '" + weight.name() + "' " + (inOut ? "[in, out]" : "[out, in]") + " "
                    + in + "->" + out + (bias == null ? ", no bias" : ", bias '" + bias.name() + "'");
        }

        LinearModule toModule() {
            return new LinearModule(module.path(), weight.name(), bias == null ? null : bias.name(), input.name(),
                    output.name(), in, out, module.layer(), inOut);
        }
    }

    private final Graph g;
    private final DecoderLayout layout;

    private LinearProjections(Graph g, DecoderLayout layout) {
        this.g = g;
        this.layout = layout;
    }

    /** Recognised projections by module path; what cannot be attributed or is ambiguous goes to {@code notes}. */
    static Map<String, Projection> find(Graph g, DecoderLayout layout, List<String> notes) {
        LinearProjections f = new LinearProjections(g, layout);
        Map<String, Projection> found = new LinkedHashMap<>();
        for (Node n : List.copyOf(g.nodes())) {
            if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
                continue;
            }
            Projection p = switch (n.opType()) {
                case "Gemm" -> f.gemm(n, notes);
                case "MatMul" -> f.matMul(n);
                default -> null;
            };
            if (p == null) {
                continue;
            }
            if (p.module() == null) {
                notes.add("linear not attributed to any module (anonymous weight and node name): " + p.describe());
                continue;
            }
            Projection prev = found.putIfAbsent(p.module().path(), p);
            if (prev != null) {
                notes.add(p.module().path() + ": a second candidate " + p.describe() + " ignored; kept "
                        + prev.describe());
            }
        }
        return found;
    }

    private boolean isInitializer(Value v) {
        return v != null && g.initializer(v.name()) != null && !v.isGraphInput();
    }

    private Projection gemm(Node n, List<String> notes) {
        Value a = n.input(0);
        Value w = n.input(1);
        Value c = n.inputCount() > 2 ? n.input(2) : null;
        if (!isInitializer(w) || isInitializer(a) || g.initializer(w.name()).rank() != 2) {
            return null;
        }
        if (n.intAttr("transA", 0) != 0) {
            notes.add(n.describe() + " has transA=1; not treated as a linear module");
            return null;
        }
        long[] s = g.initializer(w.name()).shape();
        boolean inOut = n.intAttr("transB", 0) == 0;
        long in = inOut ? s[0] : s[1];
        long out = inOut ? s[1] : s[0];
        Value bias = isInitializer(c) && g.initializer(c.name()).elementCount() == out ? c : null;
        return projection(n, null, w, bias, a, n.output(0), in, out, inOut);
    }

    private Projection matMul(Node n) {
        Value a = n.input(0);
        Value w = n.input(1);
        boolean inOut = true;
        if (isInitializer(a) || w == null) {
            return null;
        }
        if (!isInitializer(w)) {
            Node p = w.producer();
            if (p != null && p.opType().equals("Transpose") && isInitializer(p.input(0))
                    && Arrays.equals(p.intsAttr("perm", new long[] {1, 0}), new long[] {1, 0})) {
                w = p.input(0);
                inOut = false;
            } else {
                return null;
            }
        }
        long[] s = g.initializer(w.name()).shape();
        if (s.length != 2) {
            return null;
        }
        long in = inOut ? s[0] : s[1];
        long out = inOut ? s[1] : s[0];
        Value output = n.output(0);
        Value bias = null;
        Node biasAdd = null;
        if (output.uses().size() == 1 && !output.isGraphOutput()) {
            Node u = output.uses().get(0);
            if (u.opType().equals("Add") && u.domain().isEmpty()) {
                Value other = u.input(0) == output ? u.input(1) : u.input(0);
                if (isInitializer(other) && g.initializer(other.name()).rank() == 1
                        && g.initializer(other.name()).dim(0) == out) {
                    bias = other;
                    biasAdd = u;
                    output = u.output(0);
                }
            }
        }
        return projection(n, biasAdd, w, bias, a, output, in, out, inOut);
    }

    private Projection projection(Node n, Node biasAdd, Value w, Value bias, Value input, Value output, long in,
            long out, boolean inOut) {
        ModulePath path = layout.moduleOfWeight(w.name());
        if (path == null) {
            path = layout.moduleOfNode(n.name());
        }
        if (path == null && biasAdd != null) {
            path = layout.moduleOfNode(biasAdd.name());
        }
        return new Projection(path, n, w, bias, input, output, in, out, inOut);
    }
}
