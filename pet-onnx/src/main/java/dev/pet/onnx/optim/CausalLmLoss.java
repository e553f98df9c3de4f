package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
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
        Value flatLogits = b.flatten(logitsValue, 2);
        Value flatLabels = b.reshape(labels, -1);
        // -log_softmax(logits)[label], from standard ops rather than SoftmaxCrossEntropyLoss: ONNX Runtime's CUDA
        // provider registers that op only in its training builds, so it would fall back to the CPU on a GPU.
        Value perToken;
        if (differentiable) {
            Value logProb = b.logSoftmax(flatLogits, 1);
            perToken = b.neg(b.squeeze(b.gatherElements(logProb, b.unsqueeze(flatLabels, 1), 1), 1));
        } else {
            Value target = b.squeeze(b.gatherElements(flatLogits, b.unsqueeze(flatLabels, 1), 1), 1);
            perToken = b.sub(b.reduceLogSumExp(flatLogits, new long[] {1}, false), target);
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
        return out;
    }
}
