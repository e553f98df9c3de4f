package dev.pet.runtime.train;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.ModelAnatomy;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.runtime.config.ConfigException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The values between a model's transformer blocks, for {@code runner_config.recompute}: the hidden state entering the
 * first block, then every block's output (the anatomy's {@code residualAfterMlp}), so that each block is one
 * recomputed segment.
 */
public final class BlockBoundaries {
    private static final String KEY = "runner_config.recompute";

    private BlockBoundaries() {
    }

    /** The block input of the first block, then each block's output; fails naming what the anatomy lacks. */
    public static List<String> of(Graph graph, ModelAnatomy anatomy) {
        List<LayerAnatomy> layers = anatomy.layers();
        if (layers.isEmpty()) {
            throw new ConfigException(KEY, "the model's anatomy names no transformer blocks to recompute");
        }
        for (LayerAnatomy l : layers) {
            if (l.key() == null || l.residualAfterAttention() == null || l.residualAfterMlp() == null) {
                throw new ConfigException(KEY, "block " + l.index() + " of the model has no known key, residual"
                        + " after attention or block output, so its boundaries are unknown");
            }
        }
        List<String> out = new ArrayList<>();
        out.add(blockInput(graph, layers.get(0)).name());
        for (LayerAnatomy l : layers) {
            out.add(l.residualAfterMlp());
        }
        return out;
    }

    /** The residual add after attention reads the block's input and the attention's output; the input is the one
     * the block's keys do not feed. */
    private static Value blockInput(Graph graph, LayerAnatomy first) {
        Node add = graph.requireValue(first.residualAfterAttention()).producer();
        Set<Node> fromKey = new HashSet<>();
        Deque<Value> work = new ArrayDeque<>(List.of(graph.requireValue(first.key())));
        while (!work.isEmpty()) {
            for (Node u : work.pop().uses()) {
                if (fromKey.add(u)) {
                    u.outputs().stream().filter(v -> v != null).forEach(work::push);
                }
            }
        }
        List<Value> candidates = new ArrayList<>();
        for (Value in : add == null ? List.<Value>of() : add.inputs()) {
            if (in != null && (in.producer() == null || !fromKey.contains(in.producer()))) {
                candidates.add(in);
            }
        }
        if (add == null || !add.opType().equals("Add") || candidates.size() != 1) {
            throw new ConfigException(KEY, "cannot tell block 0's input from '" + first.residualAfterAttention()
                    + "' (expected the residual Add of the block input and the attention output)");
        }
        return candidates.get(0);
    }
}
