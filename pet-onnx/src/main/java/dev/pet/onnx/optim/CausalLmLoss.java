package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.Objects;

/**
 * Causal language-model loss: the mean cross-entropy over counted tokens, with labels shifted as Hugging Face and
 * MindFormers do.
 *
 * <p><b>Input convention.</b> The graph takes {@code input_ids} [batch, S] and {@code labels} [batch, S] (int64)
 * where {@code labels[b, t]} is the token that should follow position t — the labels are <em>already shifted</em>,
 * so the forward graph is unchanged and stays reusable for inference. A label of {@link #IGNORE_INDEX} (-100) is not
 * counted. Optionally a {@code loss_mask} [batch, S] int64 input marks counted positions with 1. Build the arrays
 * with {@link #fromWindow} (a window of S + 1 tokens per row gives S predictions: {@code input_ids = w[0..S)},
 * {@code labels = w[1..S]}) or {@link #shiftLabels} (Hugging Face style labels equal to the input ids, shifted
 * left with -100 at the end).
 */
public final class CausalLmLoss {
    public static final String LABELS = "labels";
    public static final String LOSS_MASK = "loss_mask";
    public static final String LOSS = "loss";
    public static final long IGNORE_INDEX = -100;

    private CausalLmLoss() {
    }

    /**
     * Appends the loss to {@code b}'s graph and returns the scalar loss value (the logits' element type).
     *
     * @param logits   [batch, S, vocab] scores
     * @param labels   [batch, S] int64 target ids, already shifted
     * @param lossMask [batch, S] int64, 1 where counted, or null
     */
    public static Value append(GraphBuilder b, Value logits, Value labels, Value lossMask) {
        Objects.requireNonNull(logits, "logits");
        Objects.requireNonNull(labels, "labels");
        TensorType lt = logits.type();
        if (!lt.hasRank() || lt.rank() != 3) {
            throw new OnnxException("causal LM loss needs logits [batch, sequence, vocab], '" + logits.name()
                    + "' is " + lt);
        }
        Dim vocab = lt.dims().get(2);
        Value flatShape = vocab.isFixed() ? b.ints(-1, vocab.value())
                : b.concat(List.of(b.ints(-1), b.shape(logits, 2, 3)), 0);
        Value scores = b.reshape(logits, flatShape);
        Value target = labels;
        if (lossMask != null) {
            target = b.where(b.equal(lossMask, b.ints(0)), b.constant(Tensor.scalar(IGNORE_INDEX)), labels);
        }
        target = b.reshape(target, b.ints(-1));
        return b.softmaxCrossEntropy(scores, target, "mean", IGNORE_INDEX).output(0);
    }

    /**
     * A copy of {@code forward} with a {@code labels} input (and {@code loss_mask} when asked) and a scalar
     * {@code loss} output appended after the existing outputs.
     */
    public static Model addTo(Model forward, String logitsName, boolean withLossMask) {
        Model m = forward.copy();
        Graph g = m.graph();
        GraphBuilder b = new GraphBuilder(g, (int) m.opset());
        Value logits = g.requireValue(logitsName);
        List<Dim> d = logits.type().hasRank() ? logits.type().dims().subList(0, 2)
                : List.of(Dim.symbol("batch"), Dim.symbol("sequence"));
        Value labels = b.input(LABELS, new TensorType(DataType.INT64, d));
        Value mask = withLossMask ? b.input(LOSS_MASK, new TensorType(DataType.INT64, d)) : null;
        b.setScope("/loss");
        Value loss = append(b, logits, labels, mask);
        b.setScope("");
        b.output(loss, LOSS);
        return m;
    }

    /**
     * Input ids and labels.
     *
     * @param inputIds [batch, S] row-major
     * @param labels   [batch, S] row-major, already shifted
     * @param batch    rows
     * @param sequence S
     */
    public record Batch(long[] inputIds, long[] labels, int batch, int sequence) {
    }

    /** Splits windows of {@code window} = S + 1 tokens per row into S input ids and S shifted labels. */
    public static Batch fromWindow(long[] tokens, int batch, int window) {
        if (window < 2 || (long) batch * window != tokens.length) {
            throw new OnnxException("token windows: expected " + batch + " x " + window + " (>= 2) tokens, found "
                    + tokens.length);
        }
        int s = window - 1;
        long[] ids = new long[batch * s];
        long[] labels = new long[batch * s];
        for (int r = 0; r < batch; r++) {
            System.arraycopy(tokens, r * window, ids, r * s, s);
            System.arraycopy(tokens, r * window + 1, labels, r * s, s);
        }
        return new Batch(ids, labels, batch, s);
    }

    /** Hugging Face labels (aligned with the inputs) shifted left by one per row, -100 in the last position. */
    public static long[] shiftLabels(long[] labels, int batch, int sequence) {
        if ((long) batch * sequence != labels.length) {
            throw new OnnxException("labels: expected " + batch + " x " + sequence + ", found " + labels.length);
        }
        long[] out = new long[labels.length];
        for (int r = 0; r < batch; r++) {
            System.arraycopy(labels, r * sequence + 1, out, r * sequence, sequence - 1);
            out[r * sequence + sequence - 1] = IGNORE_INDEX;
        }
        return out;
    }
}
