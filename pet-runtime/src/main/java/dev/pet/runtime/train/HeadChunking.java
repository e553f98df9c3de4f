package dev.pet.runtime.train;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.ModelAnatomy;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.LossChunks;
import java.util.List;

/**
 * How many row chunks a run's language-model head and loss use ({@link LossChunks}), from what the run knows: the
 * rows of a micro-batch (batch_size × seq_length), the logits' width and element size, and the anatomy's last block
 * output as the hidden state entering the head. Nothing to configure: the count keeps one chunk's logits near
 * {@link LossChunks#TARGET_BYTES}, and small heads (a GPT-2 small batch of 6 rows) stay unchunked.
 */
public final class HeadChunking {
    private HeadChunking() {
    }

    /**
     * The chunks for {@code rows} rows per micro-batch of {@code graph} (the PET model's forward graph), or null when
     * one chunk is enough or the model does not say where its head starts (no blocks in its anatomy, logits of
     * unknown width).
     */
    public static LossChunks of(Graph graph, ModelAnatomy anatomy, long rows) {
        List<LayerAnatomy> layers = anatomy.layers();
        if (layers.isEmpty() || rows < 1) {
            return null;
        }
        String hidden = layers.get(layers.size() - 1).residualAfterMlp();
        Value logits = graph.value(anatomy.logits());
        if (hidden == null || graph.value(hidden) == null || logits == null) {
            return null;
        }
        TensorType t = logits.type();
        if (!t.hasRank() || t.rank() == 0 || !t.dims().get(t.rank() - 1).isFixed() || t.dataType() == null) {
            return null;
        }
        int count = LossChunks.countFor(rows, t.dims().get(t.rank() - 1).value(), t.dataType().byteSize());
        return count == 1 ? null : new LossChunks(hidden, count);
    }
}
