package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns a language model's forward graph (input_ids [B, S] → logits [B, S, V]) into one that computes the causal-LM
 * loss of a token window, as Hugging Face and MindFormers shift labels: the graph input {@value #TOKENS} [B, S+1]
 * holds each window; positions 0..S-1 are the model's input and positions 1..S its targets, so a window of
 * seq_length+1 tokens gives seq_length predictions. {@value #LOSS_MASK} [B, S] (float, 1 = counts) masks targets
 * (prompt tokens, padding). The padding input {@code attention_mask}, if the model has one, becomes all ones.
 *
 * <p>Outputs added: {@value #LOSS} (mean cross-entropy over counted targets), {@value #LOSS_SUM} and
 * {@value #TOKEN_COUNT} (for exact evaluation over many batches).
 */
public final class CausalLmLoss {
    public static final String TOKENS = "tokens";
    public static final String LOSS_MASK = "loss_mask";
    public static final String LOSS = "loss";
    public static final String LOSS_SUM = "loss_sum";
    public static final String TOKEN_COUNT = "token_count";

    private CausalLmLoss() {
    }

    /**
     * Rewrites {@code graph} in place. {@code inputIds}, {@code attentionMask} (nullable) and {@code logits} name
     * the model's values; the logits stop being a graph output.
     */
    public static Value append(Graph graph, String inputIds, String attentionMask, String logits, int opset) {
        return append(graph, inputIds, attentionMask, logits, opset, true);
    }

    /**
     * As {@link #append(Graph, String, String, String, int)}; with {@code differentiable} false (evaluation graphs,
     * never differentiated) each token's loss is {@code logsumexp(logits) - logits[label]}, one reduction over the
     * logits instead of a log-softmax copy of them: one B·S×V tensor less alive at once. The training form keeps
     * the log-probabilities, which the loss gradient reads.
     */
    public static Value append(Graph graph, String inputIds, String attentionMask, String logits, int opset,
            boolean differentiable) {
        return append(graph, inputIds, attentionMask, logits, opset, differentiable, null).loss();
    }

    /**
     * What {@link #append(Graph, String, String, String, int, boolean, LossChunks)} built.
     *
     * @param loss             the mean loss output
     * @param chunks           row chunks of the head and loss (1: unchunked)
     * @param segments         one per chunk (its rows to its per-token losses), each waiting for the next chunk's
     *                         gradient: add them to a {@link Recompute} to recompute the chunks in the backward pass
     * @param unchunkedBecause why chunks were asked for but the head is computed whole; null otherwise
     */
    public record Appended(Value loss, int chunks, List<Recompute.Segment> segments, String unchunkedBecause) {
        public Appended {
            segments = List.copyOf(segments);
        }
    }

    /**
     * As {@link #append(Graph, String, String, String, int, boolean)}, with the head and loss over row chunks when
     * {@code chunks} asks for more than one ({@link LossChunks}; null for none): the nodes from
     * {@code chunks.hidden()} to the logits run once per chunk of rows, each followed by its rows' token losses, so
     * that one chunk's logits, log-probabilities and their gradients are alive at a time instead of B·S×V tensors.
     * The losses and gradients are those of the unchunked graph (the same ops on the same rows; sums differ in
     * rounding only). Where the head region is not provably row by row (an op outside a known list, a reduction
     * across rows, a value that depends on the model's inputs, a random op), the graph is built unchunked and
     * {@link Appended#unchunkedBecause()} says why.
     */
    public static Appended append(Graph graph, String inputIds, String attentionMask, String logits, int opset,
            boolean differentiable, LossChunks chunks) {
        ChunkedHead.Analysis analysis = chunks == null || chunks.count() == 1 ? null
                : ChunkedHead.analyse(graph, opset, chunks.hidden(), graph.requireValue(logits));
        GraphBuilder b = new GraphBuilder(graph, opset);
        String old = b.setScope("loss");
        Value ids = graph.requireValue(inputIds);
        Value logitsValue = graph.requireValue(logits);
        if (!ids.isGraphInput()) {
            throw new OnnxException("'" + inputIds + "' is not a graph input");
        }
        Value tokens = b.input(TOKENS, TensorType.symbolic(DataType.INT64, "batch", "window"));
        Value mask = b.input(LOSS_MASK, TensorType.symbolic(DataType.FLOAT, "batch", "sequence"));
        graph.removeInput(ids);
        Value one = b.ints(1);
        Value minusOne = b.ints(-1);
        Value zero = b.ints(0);
        // input_ids = tokens[:, :-1], produced into the existing value so the model's nodes keep reading it.
        graph.addNodeWithOutputs("Slice", "", graph.uniqueNodeName("loss/inputs"),
                List.of(tokens, zero, minusOne, one), List.of(ids), List.of());
        Value labels = b.slice(tokens, one, b.ints(Long.MAX_VALUE), one, null);
        // The labels have input_ids' shape (S of the S+1 window each), which inference cannot see through the Slice;
        // recording it keeps the per-token loss and its gradient on the model's named sizes.
        if (ids.type().hasRank()) {
            labels.setType(ids.type().withDataType(DataType.INT64));
        }
        if (attentionMask != null && graph.value(attentionMask) != null) {
            Value am = graph.value(attentionMask);
            graph.removeInput(am);
            DataType amType = am.type().dataType() == null ? DataType.INT64 : am.type().dataType();
            graph.addNodeWithOutputs("ConstantOfShape", "", graph.uniqueNodeName("loss/attention_mask"),
                    List.of(b.shape(ids)), List.of(am),
                    List.of(dev.pet.onnx.ir.Attribute.of("value", Tensor.fromDoubles(amType, new double[] {1}, 1))));
        }
        graph.removeOutput(logitsValue);
        DataType lt = GraphBuilder.elementType(logitsValue);
        Value flatLabels = b.reshape(labels, -1);
        Value perToken;
        List<Recompute.Segment> segments = new ArrayList<>();
        int used = 1;
        if (analysis != null && analysis.plan() != null) {
            perToken = ChunkedHead.build(b, analysis.plan(), chunks.count(), flatLabels,
                    (rows, rowLabels) -> perToken(b, rows, rowLabels, differentiable), segments);
            used = chunks.count();
        } else {
            perToken = perToken(b, b.flatten(logitsValue, 2), flatLabels, differentiable);
        }
        Value flatMask = b.reshape(mask, -1);
        if (lt != DataType.FLOAT) {
            flatMask = b.cast(flatMask, lt);
        }
        Value lossSum = b.reduceSum(b.mul(perToken, flatMask), new long[0], false);
        Value count = b.reduceSum(flatMask, new long[0], false);
        Value loss = b.div(lossSum, b.max(count, b.constant(lt, 1)));
        b.output(b.identity(lossSum), LOSS_SUM);
        b.output(b.identity(count), TOKEN_COUNT);
        Value out = b.output(loss, LOSS);
        b.setScope(old);
        return new Appended(out, used, segments, analysis == null ? null : analysis.reason());
    }

    /** Each row's -log_softmax(logits)[label]: [rows, V] logits and [rows] labels → [rows]. */
    private static Value perToken(GraphBuilder b, Value flatLogits, Value flatLabels, boolean differentiable) {
        // From standard ops rather than SoftmaxCrossEntropyLoss: ONNX Runtime's CUDA provider registers that op only
        // in its training builds, so it would fall back to the CPU on a GPU.
        if (differentiable) {
            Value logProb = b.logSoftmax(flatLogits, 1);
            return b.neg(b.squeeze(b.gatherElements(logProb, b.unsqueeze(flatLabels, 1), 1), 1));
        }
        Value target = b.squeeze(b.gatherElements(flatLogits, b.unsqueeze(flatLabels, 1), 1), 1);
        return b.sub(b.reduceLogSumExp(flatLogits, new long[] {1}, false), target);
    }
}
