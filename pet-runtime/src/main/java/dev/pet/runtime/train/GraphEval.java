package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.metrics.EvalMetrics;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The eval-only graph: the forward model with the causal-LM loss, and nothing else (no gradients, no optimizer
 * state). The tensors named in {@code inputs} are read as graph inputs (a train step feeds its current trainables);
 * every other weight is a constant of the session. Compiled on first use.
 */
final class GraphEval implements AutoCloseable {
    private final OrtEngine engine;
    private final Model model;
    private CompiledGraph graph;

    GraphEval(OrtEngine engine, Model forward, GraphTrainStep.ModelIo io, List<String> inputs) {
        this.engine = Objects.requireNonNull(engine, "engine");
        this.model = evalModel(forward, io, inputs);
    }

    /** The loss graph without gradients, reading {@code inputs} as graph inputs. */
    static Model evalModel(Model forward, GraphTrainStep.ModelIo io, List<String> inputs) {
        Model m = forward.copy();
        CausalLmLoss.append(m.graph(), io.inputIds(), io.attentionMask(), io.logits(), (int) m.opset(), false,
                io.lossChunks());
        Graph g = m.graph();
        for (String t : inputs) {
            g.promoteInitializerToInput(t);
        }
        g.clearOutputs();
        g.addOutput(g.requireValue(CausalLmLoss.LOSS_SUM));
        g.addOutput(g.requireValue(CausalLmLoss.TOKEN_COUNT));
        g.removeUnused();
        return m;
    }

    /** Summed token loss and token count of one batch; {@code inputs} feeds the promoted tensors. */
    TrainStep.EvalResult evaluate(Batch b, Map<String, Tensor> inputs) {
        Map<String, Tensor> feeds = new HashMap<>(inputs);
        feeds.put(CausalLmLoss.TOKENS, Tensor.ofLongs(b.tokens(), b.batchSize(), b.seqLength() + 1L));
        feeds.put(CausalLmLoss.LOSS_MASK, maskTensor(b));
        if (graph == null) {
            graph = engine.compile(model);
        }
        Map<String, Tensor> out = graph.run(feeds);
        return new TrainStep.EvalResult(out.get(CausalLmLoss.LOSS_SUM).toDoubleArray()[0],
                Math.round(out.get(CausalLmLoss.TOKEN_COUNT).toDoubleArray()[0]));
    }

    static Tensor maskTensor(Batch b) {
        ByteBuffer buf = ByteBuffer.allocate(b.lossMask().length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(b.lossMask());
        return Tensor.of(DataType.FLOAT, new long[] {b.batchSize(), b.seqLength()}, buf);
    }

    /** Mean token loss over a whole dataset, batch by batch. */
    static EvalMetrics meanLoss(PackedDataset data, int batchSize, long step,
            java.util.function.Function<Batch, TrainStep.EvalResult> evaluate) {
        double sum = 0;
        long count = 0;
        Iterator<Batch> it = data.evalBatches(batchSize);
        while (it.hasNext()) {
            TrainStep.EvalResult r = evaluate.apply(it.next());
            sum += r.lossSum();
            count += r.tokens();
        }
        if (count == 0) {
            throw new PetException("eval_dataset " + data + " has no tokens to evaluate");
        }
        return new EvalMetrics(step, sum / count, count);
    }

    @Override
    public void close() {
        if (graph != null) {
            graph.close();
        }
    }
}
