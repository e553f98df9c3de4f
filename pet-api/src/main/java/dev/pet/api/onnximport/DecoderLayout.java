package dev.pet.api.onnximport;

import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a decoder family names its modules, the only family-specific input of {@link DecoderImporter}. Module paths
 * follow the Hugging Face state dict: a block's linear is {@code layerPrefix + N + "." + part}
 * ({@code transformer.h.0.attn.c_attn}, {@code model.layers.0.self_attn.q_proj}).
 *
 * @param family           provider id ({@code gpt2})
 * @param layerPrefixes    block path prefixes, canonical first ({@code transformer.h.}), then the forms an export of
 *                         the bare base model uses ({@code h.}), which are mapped to the canonical one
 * @param layerLinears     the linear modules of a block relative to its path, in graph order
 * @param attentionOutput  the attention output projection, one of {@code layerLinears}
 * @param mlpOutput        the MLP's output projection, one of {@code layerLinears}
 * @param layerNorms       the norms of a block relative to its path ({@code ln_1}), reported when found by scope
 * @param lmHead           module path of the LM head ({@code lm_head})
 * @param embeddingWeights initializer names the token embedding may have, canonical first
 * @param positionEmbeddings module paths of a learned position table ({@code transformer.wpe}, {@code wpe}); its
 *                         Gather's indices are the anatomy's position ids. Empty for families without one.
 */
public record DecoderLayout(String family, List<String> layerPrefixes, List<String> layerLinears,
        String attentionOutput, String mlpOutput, List<String> layerNorms, String lmHead,
        List<String> embeddingWeights, List<String> positionEmbeddings) {

    public DecoderLayout {
        Objects.requireNonNull(family, "family");
        layerPrefixes = List.copyOf(layerPrefixes);
        layerLinears = List.copyOf(layerLinears);
        layerNorms = List.copyOf(layerNorms);
        embeddingWeights = List.copyOf(embeddingWeights);
        positionEmbeddings = List.copyOf(positionEmbeddings);
        if (layerPrefixes.isEmpty() || !layerLinears.contains(attentionOutput) || !layerLinears.contains(mlpOutput)) {
            throw new IllegalArgumentException("layout needs a layer prefix and output projections among "
                    + layerLinears);
        }
    }

    /** The canonical block prefix ({@code transformer.h.}). */
    public String layerPrefix() {
        return layerPrefixes.get(0);
    }

    /** The node-name scope of block {@code i} ({@code /transformer/h.0}) in the canonical form. */
    public String layerScope(int i) {
        return scopeOf(layerPrefix()) + i;
    }

    /** True when some initializer or node of {@code g} names a block module of this family. */
    public boolean namesAnyModule(Graph g) {
        for (String init : g.initializers().keySet()) {
            ModulePath m = moduleOfWeight(init);
            if (m != null && m.layer() >= 0) {
                return true;
            }
        }
        for (Node n : g.nodes()) {
            ModulePath m = moduleOfNode(n.name());
            if (m != null && m.layer() >= 0) {
                return true;
            }
        }
        return false;
    }

    /** The value name the import gives the position ids ({@code /transformer/position_ids}). */
    public String positionIdsValue() {
        String scope = scopeOf(layerPrefix());
        return scope.substring(0, scope.lastIndexOf('/')) + "/position_ids";
    }

    /** A recognised module path: block index (or -1 outside the blocks) and part ({@code attn.c_attn}). */
    record ModulePath(String path, int layer, String part) {
    }

    /** The canonical module a dotted path names, or null when it is no module of this family. */
    ModulePath module(String dotted) {
        if (dotted == null) {
            return null;
        }
        if (dotted.equals(lmHead)) {
            return new ModulePath(dotted, -1, null);
        }
        for (String prefix : layerPrefixes) {
            Matcher m = Pattern.compile(Pattern.quote(prefix) + "(\\d+)\\.(.+)").matcher(dotted);
            if (m.matches() && layerLinears.contains(m.group(2))) {
                int layer = Integer.parseInt(m.group(1));
                return new ModulePath(layerPrefix() + layer + "." + m.group(2), layer, m.group(2));
            }
        }
        return null;
    }

    /** The module of a state-dict weight name ({@code transformer.h.0.attn.c_attn.weight}), or null. */
    ModulePath moduleOfWeight(String initializer) {
        return initializer != null && initializer.endsWith(".weight")
                ? module(initializer.substring(0, initializer.length() - ".weight".length())) : null;
    }

    /** The module a node's scope names ({@code /transformer/h.0/attn/c_attn/MatMul}), or null. */
    ModulePath moduleOfNode(String nodeName) {
        if (nodeName == null || !nodeName.startsWith("/")) {
            return null;
        }
        String[] parts = nodeName.substring(1).split("/");
        return parts.length < 2 ? null : module(String.join(".", Arrays.copyOf(parts, parts.length - 1)));
    }

    /** The block index a node's scope lies in, or -1. */
    int layerOfNode(String nodeName) {
        for (String prefix : layerPrefixes) {
            String scope = scopeOf(prefix);
            if (nodeName.startsWith(scope)) {
                int end = scope.length();
                while (end < nodeName.length() && Character.isDigit(nodeName.charAt(end))) {
                    end++;
                }
                if (end > scope.length() && end < nodeName.length() && nodeName.charAt(end) == '/') {
                    return Integer.parseInt(nodeName.substring(scope.length(), end));
                }
            }
        }
        return -1;
    }

    /** Node scopes of a block's sub-module in every prefix form ({@code /transformer/h.0/ln_1/}). */
    List<String> scopesOf(int layer, String part) {
        return layerPrefixes.stream().map(p -> scopeOf(p) + layer + "/" + part.replace('.', '/') + "/").toList();
    }

    private static String scopeOf(String prefix) {
        // transformer.h. -> /transformer/h.
        String body = prefix.substring(0, prefix.length() - 1);
        return "/" + body.replace('.', '/') + ".";
    }
}
