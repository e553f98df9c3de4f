package dev.pet.api.onnximport;

import dev.pet.api.PetException;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.Subgraphs;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Optimum's {@code decoder_model_merged.onnx}: one graph whose nodes are an {@code If} on the boolean input
 * {@code use_cache_branch}, its {@code then_branch} the with-past decoder and its {@code else_branch} the decoder
 * without past, the weights they share kept as initializers of the outer graph. Reading it picks one branch and
 * inlines it into the main graph, which is then an ordinary decoder export: the no-past branch for training and
 * evaluation (its unused {@code past_key_values.*} inputs dropped), the with-past branch for generation and exports.
 */
public final class MergedDecoder {
    private static final Pattern PAST = Pattern.compile("past_key_values\\.\\d+\\.(key|value)");

    private MergedDecoder() {
    }

    /**
     * The model with the branch {@code withPast} selects inlined, and a sentence saying so; or {@code model} itself
     * and null when it is not a merged decoder. {@code source} names the file in errors: a top-level If producing
     * graph outputs without a {@code use_cache_branch} input, a {@code use_cache_branch} that is not a boolean
     * scalar, and branches whose outputs do not match.
     */
    public static Selection select(Model model, String source, boolean withPast) {
        Graph g = model.graph();
        Value flag = g.inputs().stream().filter(v -> v.name().equals(CausalLmNames.USE_CACHE_BRANCH)).findFirst()
                .orElse(null);
        List<Node> ifs = g.nodes().stream().filter(n -> n.opType().equals("If") && n.domain().isEmpty()).toList();
        if (flag == null) {
            for (Node n : ifs) {
                if (n.outputs().stream().anyMatch(v -> v != null && v.isGraphOutput())) {
                    throw new PetException(source + ": If node '" + n.name() + "' produces the graph outputs "
                            + n.outputs().stream().filter(v -> v != null && v.isGraphOutput()).map(Value::name)
                            .toList() + " but the graph has no boolean input '" + CausalLmNames.USE_CACHE_BRANCH
                            + "' (an Optimum merged decoder selects its branch with it); inputs are "
                            + g.inputs().stream().map(Value::name).toList());
                }
            }
            return new Selection(model, null);
        }
        TensorType t = flag.type();
        if (t.dataType() != null && t.dataType() != DataType.BOOL || t.hasRank() && t.rank() > 1) {
            throw new PetException(source + ": graph input '" + flag.name() + "' is " + t + "; expected a boolean "
                    + "scalar (or [1]) selecting the with-past branch");
        }
        Model out = model.copy();
        Graph og = out.graph();
        Value f = og.value(flag.name());
        List<String> inlined = new ArrayList<>();
        for (Node n : List.copyOf(f.uses())) {
            if (!n.opType().equals("If") || n.input(0) != f) {
                continue;
            }
            try {
                checkBranchesAgree(n);
                Subgraphs.inlineIf(n, withPast);
            } catch (OnnxException e) {
                throw new PetException(source + ": " + e.getMessage(), e);
            }
            inlined.add("'" + n.name() + "'");
        }
        if (inlined.isEmpty()) {
            throw new PetException(source + ": graph input '" + flag.name() + "' is read by no If node; expected "
                    + "Optimum's merged decoder, If(" + flag.name() + ", then: with past, else: without)");
        }
        if (!f.uses().isEmpty()) {
            og.replaceAllUses(f, og.setInitializer(og.uniqueName(f.name() + "/selected"),
                    Tensor.ofBools(new boolean[] {withPast})));
        }
        og.removeInput(f);
        List<String> dropped = new ArrayList<>();
        if (!withPast) {
            for (Value in : List.copyOf(og.inputs())) {
                if (PAST.matcher(in.name()).matches() && in.uses().isEmpty()) {
                    og.removeInput(in);
                    dropped.add(in.name());
                }
            }
        }
        og.removeUnused();
        og.sortTopologically();
        return new Selection(out, "merged decoder: inlined the " + (withPast ? "with-past (then)" : "no-past (else)")
                + " branch of If " + String.join(", ", inlined) + " (" + CausalLmNames.USE_CACHE_BRANCH + " = "
                + withPast + ")" + (dropped.isEmpty() ? "" : "; dropped the unused inputs " + dropped.get(0) + ", ... ("
                + dropped.size() + ")"));
    }

    /** Both branches give as many outputs as the node, of the same element types and ranks where declared. */
    private static void checkBranchesAgree(Node n) {
        Graph then = Subgraphs.read(n, "then_branch");
        Graph other = Subgraphs.read(n, "else_branch");
        if (then.outputs().size() != other.outputs().size() || then.outputs().size() != n.outputs().size()) {
            throw new OnnxException("If node '" + n.name() + "': then_branch has " + then.outputs().size()
                    + " outputs, else_branch " + other.outputs().size() + ", the node " + n.outputs().size()
                    + "; the branches of a merged decoder must give the same outputs");
        }
        for (int i = 0; i < then.outputs().size(); i++) {
            TensorType a = then.outputs().get(i).type();
            TensorType b = other.outputs().get(i).type();
            if (a.dataType() != null && b.dataType() != null && a.dataType() != b.dataType()
                    || a.hasRank() && b.hasRank() && a.rank() != b.rank()) {
                throw new OnnxException("If node '" + n.name() + "': output " + i + " is " + a + " in then_branch ('"
                        + then.outputs().get(i).name() + "') but " + b + " in else_branch ('"
                        + other.outputs().get(i).name() + "')");
            }
        }
    }

    /**
     * @param model the model to import (the input model when it was not a merged decoder)
     * @param how   what was inlined, or null when nothing was
     */
    public record Selection(Model model, String how) {
    }
}
