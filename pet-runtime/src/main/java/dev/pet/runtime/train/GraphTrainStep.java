package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.engine.StateSpec;
import dev.pet.engine.StatefulSession;
import dev.pet.engine.StepOutputs;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.optim.CausalLmLoss;
import dev.pet.onnx.optim.LossChunks;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.optim.SplitTrainStep;
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
 *
 * <p>As a replica of a data-parallel run ({@link #dataParallel}) the step is split ({@link TrainStepBuilder#buildSplit}):
 * each micro-batch's rows are shared out by rank, every replica computes the gradients of its rows, the
 * {@link Collective} exchanges them, and the stateful session runs the apply graph on the token-weighted average. Its
 * state has the fused step's names, so checkpoints of either kind resume in the other.
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
     * Names of the model's token-id input, optional padding-mask input and logits output, what the backward
     * pass recomputes (per block: {@code Recompute.segments(BlockBoundaries.of(graph, anatomy))}), and the row chunks
     * of the head and loss ({@link HeadChunking#of}; null for none).
     */
    public record ModelIo(String inputIds, String attentionMask, String logits, Recompute recompute,
            LossChunks lossChunks) {
        public ModelIo {
            Objects.requireNonNull(inputIds, "inputIds");
            Objects.requireNonNull(logits, "logits");
            Objects.requireNonNull(recompute, "recompute");
        }

        /** Without chunks. */
        public ModelIo(String inputIds, String attentionMask, String logits, Recompute recompute) {
            this(inputIds, attentionMask, logits, recompute, null);
        }

        /** Nothing recomputed ({@link Recompute#NONE}), without chunks. */
        public ModelIo(String inputIds, String attentionMask, String logits) {
            this(inputIds, attentionMask, logits, Recompute.NONE);
        }

        /** This with the head and loss over {@code chunks} (null for none). */
        public ModelIo withLossChunks(LossChunks chunks) {
            return new ModelIo(inputIds, attentionMask, logits, recompute, chunks);
        }
    }

    private final StatefulSession session;
    /** Data-parallel only: the gradients graph, the replica group and the gradient codec; null when fused. */
    private final CompiledGraph gradients;
    private final Collective collective;
    private final GradientExchange exchange;
    /** Compiles on first use: a second session holds its own copy of the frozen weights. */
    private final GraphEval eval;
    private final TrainStepModel compiled;
    private final AdapterWriter adapterWriter;
    private final long seed;
    private final int accumulation;
    private final long buildNanos;
    private final CausalLmLoss.Appended appended;

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
        WithLoss w = withLoss(forward, io);
        return TrainStepBuilder.build(w.model(), CausalLmLoss.LOSS, trainables, spec, w.recompute());
    }

    /** The forward model with the loss, and what its backward pass recomputes. */
    private record WithLoss(Model model, Recompute recompute, CausalLmLoss.Appended appended) {
    }

    private static WithLoss withLoss(Model forward, ModelIo io) {
        Model withLoss = forward.copy();
        CausalLmLoss.Appended a = CausalLmLoss.append(withLoss.graph(), io.inputIds(), io.attentionMask(),
                io.logits(), (int) withLoss.opset(), true, io.lossChunks());
        // With block recomputation the loss chunks are recomputed too, each after the next chunk's gradient: the
        // log-probabilities of every chunk no longer live from the forward pass to the backward one. Llama-3.2-1B at
        // 4 bits: peak RSS 2.50 GiB kept, 2.29 GiB recomputed, for a second pass of the head (docs/BENCHMARKS.md,
        // "ONNX Runtime's buffer reuse"). Without recomputation they are kept: no second pass.
        Recompute recompute = io.recompute().recomputesSegments() ? io.recompute().withSegments(a.segments())
                : io.recompute();
        return new WithLoss(withLoss, recompute, a);
    }

    public GraphTrainStep(OrtEngine engine, Model forward, ModelIo io, List<String> trainables, OptimizerSpec spec,
            long seed, AdapterWriter adapterWriter) {
        this(engine, forward, io, trainables, spec, seed, adapterWriter, null);
    }

    /**
     * One replica of a data-parallel run: the split step, each micro-batch's rows shared out by
     * {@code collective}'s rank. With {@link Collective#single()} it computes what the fused step computes.
     */
    public static GraphTrainStep dataParallel(OrtEngine engine, Model forward, ModelIo io, List<String> trainables,
            OptimizerSpec spec, long seed, AdapterWriter adapterWriter, Collective collective) {
        return new GraphTrainStep(engine, forward, io, trainables, spec, seed, adapterWriter,
                Objects.requireNonNull(collective, "collective"));
    }

    private GraphTrainStep(OrtEngine engine, Model forward, ModelIo io, List<String> trainables, OptimizerSpec spec,
            long seed, AdapterWriter adapterWriter, Collective collective) {
        long t0 = System.nanoTime();
        Objects.requireNonNull(engine, "engine");
        this.adapterWriter = Objects.requireNonNull(adapterWriter, "adapterWriter");
        this.seed = seed;
        this.accumulation = spec.accumulation();
        this.collective = collective;
        SplitTrainStep split = null;
        WithLoss w = withLoss(forward, io);
        this.appended = w.appended();
        if (collective == null) {
            this.compiled = TrainStepBuilder.build(w.model(), CausalLmLoss.LOSS, trainables, spec, w.recompute());
        } else {
            split = TrainStepBuilder.buildSplit(w.model(), CausalLmLoss.LOSS, trainables, spec, w.recompute());
            this.compiled = split.apply();
        }
        List<String> pairs = new ArrayList<>();
        compiled.stateBindings().forEach((in, out) -> {
            pairs.add(in);
            pairs.add(out);
        });
        this.buildNanos = System.nanoTime() - t0;
        this.session = engine.compileStateful(compiled.model(), StateSpec.of(compiled.feeds(),
                pairs.toArray(String[]::new)), compiled.initialState());
        if (split == null) {
            this.gradients = null;
            this.exchange = null;
        } else {
            Map<String, Tensor> like = new LinkedHashMap<>();
            trainables.forEach(t -> like.put(t, compiled.initialState().get(t)));
            this.exchange = new GradientExchange(like);
            this.gradients = engine.compile(split.gradients());
        }

        // Evaluation: the same loss graph without gradients, reading the trainables as inputs.
        this.eval = new GraphEval(engine, forward, io, trainables);
    }

    /** Row chunks of the head and loss in the training graph (1: unchunked). */
    public int lossChunks() {
        return appended.chunks();
    }

    /** Why the head and loss are unchunked although chunks were asked for; null otherwise. */
    public String unchunkedBecause() {
        return appended.unchunkedBecause();
    }

    /** Time spent building the training graph (autodiff and optimizer), excluding session creation. */
    public long graphBuildNanos() {
        return buildNanos;
    }

    /** The compiled fused step, or for a data-parallel replica the apply graph. */
    public TrainStepModel compiled() {
        return compiled;
    }

    /** Bytes this replica sends per micro-batch in a data-parallel run (the gradients and a 24-byte header). */
    public int exchangedBytesPerMicroBatch() {
        return exchange == null ? 0 : exchange.payloadBytes();
    }

    @Override
    public StepResult step(List<Batch> microBatches, double learningRate, long step) {
        if (microBatches.size() != accumulation) {
            throw new PetException("the train step was compiled for " + accumulation + " micro-batches per step, "
                    + "got " + microBatches.size());
        }
        double lossSum = 0;
        double gradNorm = Double.NaN;
        long[] computeNanos = gradients == null ? new long[0] : new long[collective.size()];
        for (int i = 0; i < microBatches.size(); i++) {
            Batch b = microBatches.get(i);
            // Small positive seeds keep the in-graph hash inside int64; distinct per step and micro-batch.
            long dropoutSeed = Math.floorMod(seed * 1_000_003L + step * 131L + i, 2_147_483_647L);
            double loss;
            if (gradients == null) {
                feedBatch(b);
                if (session.feedNames().contains(TrainStepBuilder.DROPOUT_SEED)) {
                    session.feedScalar(TrainStepBuilder.DROPOUT_SEED, dropoutSeed);
                }
            }
            session.feedScalar(TrainStepBuilder.LR, learningRate);
            session.feedScalar(TrainStepBuilder.STEP, step);
            if (session.feedNames().contains(TrainStepBuilder.APPLY)) {
                boolean apply = i == microBatches.size() - 1;
                session.feed(TrainStepBuilder.APPLY, Tensor.ofBools(new boolean[] {apply}));
            }
            if (gradients == null) {
                StepOutputs out = session.step();
                loss = out.scalar(CausalLmLoss.LOSS);
                gradNorm = out.scalar(TrainStepBuilder.GRAD_NORM);
            } else {
                GradientExchange.Average avg = exchange.reduce(collective.allGather(localGradients(b, dropoutSeed)));
                avg.gradients().forEach((name, g) -> session.feed(TrainStepBuilder.gradient(name), g));
                for (int r = 0; r < computeNanos.length; r++) {
                    computeNanos[r] += avg.computeNanos()[r];
                }
                gradNorm = session.step().scalar(TrainStepBuilder.GRAD_NORM);
                loss = avg.loss();
            }
            lossSum += loss;
        }
        return new StepResult(lossSum / microBatches.size(), gradNorm,
                java.util.Arrays.stream(computeNanos).boxed().toList());
    }

    private void feedBatch(Batch b) {
        session.feedLongs(CausalLmLoss.TOKENS, b.tokens(), b.batchSize(), b.seqLength() + 1L);
        session.feed(CausalLmLoss.LOSS_MASK, GraphEval.maskTensor(b));
    }

    /**
     * This replica's rows of {@code b} through the gradients graph, encoded for the exchange. With dropout the masks
     * are hashed per row of the share, so a data-parallel run is reproducible but draws other masks than one process.
     */
    private byte[] localGradients(Batch b, long dropoutSeed) {
        Batch share = share(b, collective.rank(), collective.size());
        Map<String, Tensor> feeds = trainables();
        feeds.put(CausalLmLoss.TOKENS, Tensor.ofLongs(share.tokens(), share.batchSize(), share.seqLength() + 1L));
        feeds.put(CausalLmLoss.LOSS_MASK, GraphEval.maskTensor(share));
        if (gradients.inputNames().contains(TrainStepBuilder.DROPOUT_SEED)) {
            feeds.put(TrainStepBuilder.DROPOUT_SEED, Tensor.ofLongs(new long[] {dropoutSeed}));
        }
        java.util.Set<String> wanted = new java.util.LinkedHashSet<>(List.of(CausalLmLoss.LOSS_SUM,
                CausalLmLoss.TOKEN_COUNT));
        compiled.trainables().forEach(t -> wanted.add(TrainStepBuilder.gradient(t)));
        long t0 = System.nanoTime();
        Map<String, Tensor> out = gradients.run(feeds, wanted);
        long computeNanos = System.nanoTime() - t0;
        Map<String, Tensor> grads = new LinkedHashMap<>();
        compiled.trainables().forEach(t -> grads.put(t, out.get(TrainStepBuilder.gradient(t))));
        return exchange.encode(out.get(CausalLmLoss.LOSS_SUM).toDoubleArray()[0],
                out.get(CausalLmLoss.TOKEN_COUNT).toDoubleArray()[0], computeNanos, grads);
    }

    /** Rows {@code [rank·B/size, (rank+1)·B/size)} of {@code b}: replica {@code rank}'s share of a micro-batch. */
    static Batch share(Batch b, int rank, int size) {
        if (size == 1) {
            return b;
        }
        if (b.batchSize() % size != 0) {
            throw new PetException("a batch of " + b.batchSize() + " rows cannot be shared evenly by " + size
                    + " data-parallel replicas");
        }
        int rows = b.batchSize() / size;
        int from = rank * rows;
        int tokenRow = b.seqLength() + 1;
        long[] tokens = java.util.Arrays.copyOfRange(b.tokens(), from * tokenRow, (from + rows) * tokenRow);
        float[] mask = java.util.Arrays.copyOfRange(b.lossMask(), from * b.seqLength(),
                (from + rows) * b.seqLength());
        return new Batch(rows, b.seqLength(), tokens, mask, b.position());
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
        if (gradients != null) {
            gradients.close();
        }
    }
}
