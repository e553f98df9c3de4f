package dev.pet.api.onnximport;

import dev.pet.api.onnximport.AttentionWalk.MaskStep;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;

/**
 * Mask and identity rewiring, so that every anatomy value has readers only inside its block (what
 * {@link dev.pet.api.LayerAnatomy} promises): an {@code Identity} is put in front of the one reader a PET method may
 * redirect (keys and values entering attention, the attention bias, projection outputs before their residual add),
 * and Add/Where mask chains are folded into one additive bias ({@code scores + where(mask, 0, fill)}, equal after
 * softmax because masked entries keep the fill value).
 */
final class GraphRewiring {
    private static final int MAX_WALK = 12;
    private final Graph g;
    private final GraphBuilder b;

    GraphRewiring(Graph g, int opset) {
        this.g = g;
        this.b = new GraphBuilder(g, opset);
    }

    /** An Identity of {@code v} named {@code name} (made unique), its node under {@code scope}. */
    Value identity(Value v, String scope, String name) {
        String old = b.setScope(scope);
        Value id = b.identity(v);
        b.setScope(old);
        id.rename(g.uniqueName(name));
        return id;
    }

    /**
     * Redirects input {@code index} of {@code reader} through a new Identity named {@code name}. When the reader is
     * repeat_kv's Unsqueeze, the {@code Shape} nodes that size its Expand and Reshape read the Identity too, so keys
     * or values a PET method lengthens (prefix tuning) are repeated at their new length.
     */
    Value isolate(Node reader, int index, String scope, String name) {
        Value original = reader.input(index);
        Value id = identity(original, scope, name);
        reader.setInput(index, id);
        if (reader.opType().equals("Unsqueeze")) {
            List<Node> repeat = new java.util.ArrayList<>();
            for (Node expand : reader.output(0).uses()) {
                if (expand.opType().equals("Expand")) {
                    repeat.add(expand);
                    expand.output(0).uses().stream().filter(r -> r.opType().equals("Reshape")).forEach(repeat::add);
                }
            }
            for (Node shape : List.copyOf(original.uses())) {
                if (shape.opType().equals("Shape") && reaches(shape.output(0), repeat, 6)) {
                    shape.setInput(0, id);
                }
            }
        }
        return id;
    }

    /** Whether {@code v} feeds one of {@code targets} within {@code depth} nodes. */
    private static boolean reaches(Value v, List<Node> targets, int depth) {
        if (depth == 0 || v == null) {
            return false;
        }
        for (Node u : v.uses()) {
            if (targets.contains(u)) {
                return true;
            }
            for (Value out : u.outputs()) {
                if (reaches(out, targets, depth - 1)) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * The additive attention bias: the single Add's term when the mask is one Add, else the mask chain folded into
     * {@code scores + bias} feeding {@code softmax}. Returns the bias value, named {@code name}.
     */
    Value attentionBias(Node softmax, List<MaskStep> steps, Value scores, String scope, String name,
            List<String> folded) {
        if (steps.size() == 1 && steps.get(0).node().opType().equals("Add")) {
            Node add = steps.get(0).node();
            return isolate(add, 1 - steps.get(0).scoreInput(), scope, name);
        }
        String old = b.setScope(name.startsWith("/") ? name : scope + "/attention_bias");
        Value bias = null;
        for (int j = steps.size() - 1; j >= 0; j--) {
            MaskStep m = steps.get(j);
            Node p = m.node();
            folded.add(p.describe());
            if (p.opType().equals("Add")) {
                Value term = p.input(1 - m.scoreInput());
                bias = bias == null ? term : b.add(bias, term);
            } else {
                Value cond = p.input(0);
                Value fill = p.input(m.scoreInput() == 1 ? 2 : 1);
                Value keep = bias != null ? bias : b.constant(floatType(scores, fill), 0.0);
                bias = m.scoreInput() == 1 ? b.where(cond, keep, fill) : b.where(cond, fill, keep);
            }
        }
        b.setScope(old);
        Value id = identity(bias, scope, name);
        b.setScope(scope);
        Value masked = b.add(scores, id);
        b.setScope(old);
        softmax.setInput(0, masked);
        return id;
    }

    private static DataType floatType(Value scores, Value fill) {
        DataType t = scores.type().dataType();
        if (t == null || !t.isFloatingPoint()) {
            Tensor f = ShapeInference.constantValue(fill);
            t = f != null ? f.dataType() : fill.type().dataType();
        }
        return t != null && t.isFloatingPoint() ? t : DataType.FLOAT;
    }

    /** A projection output isolated before its residual Add, and that Add. */
    record Residual(Value output, Node add) {
    }

    /**
     * Follows {@code output} through single-use Reshape/Identity/Dropout/Cast to the residual Add, isolates the
     * branch there and returns it; returns null and adds the reason to {@code why} when the path is anything else.
     */
    Residual residual(Value output, String scope, String name, StringBuilder why) {
        Value cur = output;
        for (int step = 0; step < MAX_WALK; step++) {
            if (cur.uses().size() != 1 || cur.isGraphOutput()) {
                break;
            }
            Node u = cur.uses().get(0);
            if (!u.domain().isEmpty()) {
                why.append(" (stopped at ").append(u.describe()).append(')');
                return null;
            }
            switch (u.opType()) {
                case "Reshape", "Identity", "Dropout", "Cast" -> {
                    if (u.input(0) != cur) {
                        why.append(" (stopped at ").append(u.describe()).append(')');
                        return null;
                    }
                    cur = u.output(0);
                }
                case "Add" -> {
                    Value other = u.input(0) == cur ? u.input(1) : u.input(0);
                    if (other == cur || ShapeInference.constantValue(other) != null) {
                        why.append(" (stopped at ").append(u.describe()).append(')');
                        return null;
                    }
                    return new Residual(isolate(u, u.input(0) == cur ? 0 : 1, scope, name), u);
                }
                default -> {
                    why.append(" (stopped at ").append(u.describe()).append(')');
                    return null;
                }
            }
        }
        return null;
    }

    /** The builder, for rewrites the importer itself makes (past inputs). */
    GraphBuilder builder() {
        return b;
    }
}
