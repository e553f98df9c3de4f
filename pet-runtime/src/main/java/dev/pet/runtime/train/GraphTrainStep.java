package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.engine.OrtEngine;
import dev.pet.engine.StateSpec;
import dev.pet.engine.StatefulSession;
import dev.pet.engine.StepOutputs;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.optim.TrainStepBuilder;
import dev.pet.onnx.optim.TrainStepModel;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A {@link TrainStep} compiled into ONNX graphs and run by {@link OrtEngine}: one stateful session for the train step
 * (trainable tensors and optimizer state in double-buffered direct memory) and one session for evaluation.
 */
public final class GraphTrainStep implements TrainStep {
    /** File, inside a checkpoint, holding trainable tensors and optimizer state. */
    public static final String STATE_FILE = "training_state.safetensors";

    /** Writes an adapter from the current trainable tensors. */
    @FunctionalInterface
    public interface AdapterWriter {
        void write(Map<String, Tensor> trainables, Path directory) throws IOException;
    }

    /**
     * Names of the model's token-id input, optional padding-mask input and logits output, and what the backward
     * pass recomputes (per block: {@code Recompute.segments(BlockBoundaries.of(graph, anatomy))}).
     */
    public record ModelIo(String inputIds, String attentionMask, String logits, Recompute recompute) {
        public ModelIo {
            Objects.requireNonNull(inputIds, "inputIds");
            Objects.requireNonNull(logits, "logits");
            Objects.requireNonNull(recompute, "recompute");
        }

        /** Nothing recomputed ({@link Recompute#NONE}). */
        public ModelIo(String inputIds, String attentionMask, String logits) {
            this(inputIds, attentionMask, logits, Recompute.NONE);
        }
    }

    private final StatefulSession session;
    /** Compiles on first use: a second session holds its own copy of the frozen weights. */
    private final GraphEval eval;
    private final TrainStepModel compiled;
    private final AdapterWriter adapterWriter;
    private final long seed;
    private final int accumulation;
    private final long buildNanos;

    /**
     * The graphs a train step runs, built without ONNX Runtime: the compiled train step and the evaluation graph
     * (the same loss, with the trainables as inputs and everything else constant).
     */
    public record Graphs(TrainStepModel trainStep, Model eval) {
        public Graphs {
            Objects.requireNonNull(trainStep, "trainStep");
            Objects.requireNonNull(eval, "eval");
        }
    }

    /** Builds the train-step and evaluation graphs of {@code forward}. */
    public static Graphs graphs(Model forward, ModelIo io, List<String> trainables, OptimizerSpec spec) {
        return new Graphs(trainStepModel(forward, io, trainables, spec),
                GraphEval.evalModel(forward, io, trainables));
    }

    private static TrainStepModel trainStepModel(Model forward, ModelIo io, List<String> trainables,
            OptimizerSpec spec) {
        Model withLoss = forward.copy();
        CausalLmLoss.append(withLoss.graph(), io.inputIds(), io.attentionMask(), io.logits(),
                (int) withLoss.opset());
        return TrainStepBuilder.build(withLoss, CausalLmLoss.LOSS, trainables, spec, io.recompute());
    }

    public GraphTrainStep(OrtEngine engine, Model forward, ModelIo io, List<String> trainables, OptimizerSpec spec,
            long seed, AdapterWriter adapterWriter) {
        long t0 = System.nanoTime();
        Objects.requireNonNull(engine, "engine");
        this.adapterWriter = Objects.requireNonNull(adapterWriter, "adapterWriter");
        this.seed = seed;
        this.accumulation = spec.accumulation();
        this.compiled = trainStepModel(forward, io, trainables, spec);
        List<String> pairs = new ArrayList<>();
        compiled.stateBindings().forEach((in, out) -> {
            pairs.add(in);
            pairs.add(out);
        });
        this.buildNanos = System.nanoTime() - t0;
        this.session = engine.compileStateful(compiled.model(), StateSpec.of(compiled.feeds(),
                pairs.toArray(String[]::new)), compiled.initialState());

        // Evaluation: the same loss graph without gradients, reading the trainables as inputs.
        this.eval = new GraphEval(engine, forward, io, trainables);
    }

    /** Time spent building the training graph (autodiff and optimizer), excluding session creation. */
    public long graphBuildNanos() {
        return buildNanos;
    }

    public TrainStepModel compiled() {
        return compiled;
    }

    @Override
    public StepResult step(List<Batch> microBatches, double learningRate, long step) {
        if (microBatches.size() != accumulation) {
            throw new PetException("the train step was compiled for " + accumulation + " micro-batches per step, "
                    + "got " + microBatches.size());
        }
        double lossSum = 0;
        double gradNorm = Double.NaN;
        for (int i = 0; i < microBatches.size(); i++) {
            Batch b = microBatches.get(i);
            feedBatch(b);
            session.feedScalar(TrainStepBuilder.LR, learningRate);
            session.feedScalar(TrainStepBuilder.STEP, step);
            if (session.feedNames().contains(TrainStepBuilder.DROPOUT_SEED)) {
                // Small positive seeds keep the in-graph hash inside int64; distinct per step and micro-batch.
                long s = Math.floorMod(seed * 1_000_003L + step * 131L + i, 2_147_483_647L);
                session.feedScalar(TrainStepBuilder.DROPOUT_SEED, s);
            }
            if (session.feedNames().contains(TrainStepBuilder.APPLY)) {
                boolean apply = i == microBatches.size() - 1;
                session.feed(TrainStepBuilder.APPLY, Tensor.ofBools(new boolean[] {apply}));
            }
            StepOutputs out = session.step();
            lossSum += out.scalar(CausalLmLoss.LOSS);
            gradNorm = out.scalar(TrainStepBuilder.GRAD_NORM);
        }
        return new StepResult(lossSum / microBatches.size(), gradNorm);
    }

    private void feedBatch(Batch b) {
        session.feedLongs(CausalLmLoss.TOKENS, b.tokens(), b.batchSize(), b.seqLength() + 1L);
        session.feed(CausalLmLoss.LOSS_MASK, GraphEval.maskTensor(b));
    }


    @Override
    public EvalResult evaluate(Batch b) {
        return eval.evaluate(b, trainables());
    }

    /** Current values of the trainable tensors (copies). */
    public Map<String, Tensor> trainables() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (String t : compiled.trainables()) {
            m.put(t, session.state(t));
        }
        return m;
    }

    @Override
    public void saveState(Path directory) throws IOException {
        Files.createDirectories(directory);
        SafeTensors.write(directory.resolve(STATE_FILE), session.state(), Map.of("format", "pet-train-state"));
    }

    @Override
    public void loadState(Path directory) {
        Path f = directory.resolve(STATE_FILE);
        Map<String, Tensor> saved = SafeTensors.read(f);
        for (String name : session.stateNames()) {
            Tensor t = saved.get(name);
            if (t == null) {
                throw new PetException(f + ": missing state tensor '" + name + "'; the checkpoint was written by a "
                        + "different model or optimizer");
            }
            session.setState(name, t.copy());
        }
    }

    @Override
    public void saveAdapter(Path directory) throws IOException {
        adapterWriter.write(trainables(), directory);
    }

    @Override
    public void close() {
        session.close();
        eval.close();
    }
}
