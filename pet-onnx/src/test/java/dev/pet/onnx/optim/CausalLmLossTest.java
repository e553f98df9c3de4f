package dev.pet.onnx.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.autodiff.Ort;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The causal-LM loss in its two forms against a direct computation of shifted cross-entropy. */
class CausalLmLossTest {
    private static final int VOCAB = 11;
    private static final int BATCH = 2;
    private static final int SEQ = 5;

    /** logits[b, s] = table[input_ids[b, s]]: a "model" whose logits are known exactly. */
    private static Model model(double[] table, int opset) {
        Graph g = new Graph("lookup");
        GraphBuilder b = new GraphBuilder(g, opset);
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch", "sequence"));
        Value t = b.initializer("table", Tensor.fromDoubles(DataType.DOUBLE, table, VOCAB, VOCAB));
        b.output(b.gather(t, ids, 0), "logits");
        return new Model(g, opset);
    }

    @ParameterizedTest
    @ValueSource(ints = {17, 20})
    void evaluationFormGivesTheTrainingFormsLossWithoutALogSoftmax(int opset) {
        Random r = new Random(opset);
        double[] table = new double[VOCAB * VOCAB];
        for (int i = 0; i < table.length; i++) {
            table[i] = r.nextGaussian() * 3;
        }
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(VOCAB);
        }
        float[] mask = new float[BATCH * SEQ];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 3 == 0 ? 0 : 1;
        }
        // Reference: Σ mask · (log Σ_v exp(table[in][v]) - table[in][label]) over shifted positions.
        double sum = 0;
        double count = 0;
        for (int bi = 0; bi < BATCH; bi++) {
            for (int s = 0; s < SEQ; s++) {
                int in = (int) tokens[bi * (SEQ + 1) + s];
                int label = (int) tokens[bi * (SEQ + 1) + s + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < VOCAB; v++) {
                    max = Math.max(max, table[in * VOCAB + v]);
                }
                double z = 0;
                for (int v = 0; v < VOCAB; v++) {
                    z += Math.exp(table[in * VOCAB + v] - max);
                }
                double m = mask[bi * SEQ + s];
                sum += m * (max + Math.log(z) - table[in * VOCAB + label]);
                count += m;
            }
        }
        Map<String, Ort.Feed> feeds = Map.of(CausalLmLoss.TOKENS, Ort.Feed.longs(tokens, BATCH, SEQ + 1),
                CausalLmLoss.LOSS_MASK, Ort.Feed.floats(mask, BATCH, SEQ));
        for (boolean differentiable : new boolean[] {true, false}) {
            Model m = model(table, opset);
            CausalLmLoss.append(m.graph(), "input_ids", null, "logits", opset, differentiable);
            boolean logSoftmax = m.graph().nodes().stream().map(Node::opType).anyMatch("LogSoftmax"::equals);
            boolean logSumExp = m.graph().nodes().stream().map(Node::opType).anyMatch("ReduceLogSumExp"::equals);
            assertEquals(differentiable, logSoftmax);
            assertEquals(!differentiable, logSumExp);
            try (Ort ort = new Ort(m)) {
                Map<String, double[]> out = ort.run(feeds, CausalLmLoss.LOSS_SUM, CausalLmLoss.TOKEN_COUNT,
                        CausalLmLoss.LOSS);
                assertEquals(sum, out.get(CausalLmLoss.LOSS_SUM)[0], 1e-9 * Math.abs(sum), "differentiable "
                        + differentiable);
                assertEquals(count, out.get(CausalLmLoss.TOKEN_COUNT)[0], 0);
                assertEquals(sum / count, out.get(CausalLmLoss.LOSS)[0], 1e-9 * Math.abs(sum / count));
            }
        }
        assertTrue(count > 0);
        assertFalse(Double.isNaN(sum));
    }
}
