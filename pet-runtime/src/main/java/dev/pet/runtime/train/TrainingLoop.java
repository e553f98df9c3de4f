package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.runtime.checkpoint.Checkpoint;
import dev.pet.runtime.checkpoint.CheckpointManager;
import dev.pet.runtime.checkpoint.CheckpointWriter;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.checkpoint.TrainerState;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.BatchIterator;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.metrics.CheckpointEvent;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.RunInfo;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.metrics.TrainingSummary.StopReason;
import dev.pet.runtime.schedule.LrSchedule;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The training loop: batches, learning-rate schedule, optimizer steps, evaluation, checkpoints and resume. Logging,
 * metrics and progress are listeners. Everything that decides a step's numbers (data position, step number, state)
 * is saved in checkpoints, so a resumed run continues with exactly the losses of an uninterrupted one.
 *
 * <p>A stop request ({@link #requestStop()}, wired to SIGINT/SIGTERM by {@link #installShutdownHook()}) ends the
 * run after the current step with a checkpoint. A non-finite loss ends it without one, so the last good checkpoint
 * stays the newest.
 */
public final class TrainingLoop {
    /** Name of the directory under {@code output_dir} that receives the final adapter. */
    public static final String ADAPTER_DIR = RunDirectory.ADAPTER_DIR;

    private final RunConfig config;
    private final PackedDataset train;
    private final PackedDataset eval;
    private final TrainStep trainStep;
    private final TrainingListener listener;
    private final CheckpointManager checkpoints;
    private final String modelName;
    private final String petName;
    private volatile boolean stopRequested;
    private final CountDownLatch finished = new CountDownLatch(1);

    /** A loop writing into {@code run}, the locked output directory of {@code config}. */
    public TrainingLoop(RunDirectory run, RunConfig config, PackedDataset train, PackedDataset eval,
            TrainStep trainStep, TrainingListener listener, String modelName, String petName) {
        Objects.requireNonNull(run, "run");
        this.config = Objects.requireNonNull(config, "config");
        this.train = Objects.requireNonNull(train, "train");
        this.eval = eval;
        this.trainStep = Objects.requireNonNull(trainStep, "trainStep");
        this.listener = Objects.requireNonNull(listener, "listener");
        this.modelName = modelName;
        this.petName = petName;
        this.checkpoints = run.checkpoints(Math.max(1, config.callbacks().keepCheckpoints()));
    }

    /** Asks the loop to stop after the current step, writing a checkpoint first. */
    public void requestStop() {
        stopRequested = true;
    }

    /**
     * Makes SIGINT/SIGTERM stop the run cleanly: the hook asks for a stop and waits (up to two minutes) until the
     * checkpoint is written. Returns the hook so callers can remove it after the run.
     */
    public Thread installShutdownHook() {
        Thread hook = new Thread(() -> {
            requestStop();
            try {
                finished.await(2, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "pet-shutdown-checkpoint");
        Runtime.getRuntime().addShutdownHook(hook);
        return hook;
    }

    /** Number of optimizer steps the run takes in all. */
    public long totalSteps() {
        long max = config.runner().maxSteps();
        if (max > 0) {
            return max;
        }
        long perEpoch = train.batchesPerEpoch(config.runner().globalBatchSize())
                / Math.max(1, config.runner().gradientAccumulationSteps());
        return Math.max(1, perEpoch) * Math.max(1, config.runner().epochs());
    }

    public TrainingSummary run() {
        try {
            return runLoop();
        } finally {
            finished.countDown();
        }
    }

    private TrainingSummary runLoop() {
        int batchSize = config.runner().globalBatchSize(); // data-parallel replicas share each batch's rows
        int accumulation = Math.max(1, config.runner().gradientAccumulationSteps());
        long total = totalSteps();
        LrSchedule schedule = LrSchedule.of(config.lrSchedule(), total);

        long step = 0;
        long tokens = 0;
        double lastLoss = Double.NaN;
        DataPosition position = DataPosition.START;
        if (config.resumeTraining()) {
            Optional<Checkpoint> latest = checkpoints.resumePoint();
            if (latest.isPresent()) {
                TrainerState state = latest.get().state();
                if (!state.configHash().equals(config.hash())) {
                    throw new PetException("cannot resume from " + latest.get().directory() + ": it was written by a "
                            + "different configuration (config hash " + state.configHash() + ", this run "
                            + config.hash() + ")");
                }
                trainStep.loadState(latest.get().directory());
                step = state.step();
                tokens = state.tokensSeen();
                lastLoss = state.lastLoss();
                position = state.dataPosition();
            }
        }

        long tokensPerStep = (long) batchSize * accumulation * train.seqLength();
        listener.onTrainingBegin(new RunInfo(modelName, petName, total, step, tokensPerStep));
        BatchIterator batches = train.trainBatches(batchSize, config.seed(), position);
        long started = System.nanoTime();
        long lastCheckpoint = step;
        StopReason reason = StopReason.COMPLETED;

        while (step < total) {
            if (stopRequested) {
                reason = StopReason.INTERRUPTED;
                break;
            }
            List<Batch> micro = new ArrayList<>(accumulation);
            long stepTokens = 0;
            for (int i = 0; i < accumulation; i++) {
                Batch b = batches.next();
                micro.add(b);
                stepTokens += b.lossTokens();
            }
            double lr = schedule.learningRate(step);
            long t0 = System.nanoTime();
            TrainStep.StepResult result = trainStep.step(micro, lr, step + 1);
            long nanos = System.nanoTime() - t0;
            if (!Double.isFinite(result.loss())) {
                reason = StopReason.NON_FINITE_LOSS;
                listener.onTrainingEnd(new TrainingSummary(step, result.loss(), tokens,
                        Duration.ofNanos(System.nanoTime() - started), reason));
                throw new PetException("loss became " + result.loss() + " at step " + (step + 1) + "; stopping. "
                        + (lastCheckpoint > 0 ? "The newest checkpoint (step " + lastCheckpoint + ") is the last good "
                        + "state; lower the learning rate or enable max_grad_norm and resume"
                        : "No checkpoint was written yet; lower the learning rate or enable max_grad_norm, and check "
                        + "the model and data for NaN/Inf"));
            }
            step++;
            tokens += stepTokens;
            lastLoss = result.loss();
            listener.onStep(new StepMetrics(step, batches.position().epoch(), result.loss(), lr, result.gradNorm(),
                    stepTokens, nanos, result.replicaComputeNanos()));

            long every = config.callbacks().checkpointSteps();
            if (every > 0 && step % every == 0 && step < total) {
                saveCheckpoint(step, batches.position(), lastLoss, tokens);
                lastCheckpoint = step;
            }
            long evalEvery = config.callbacks().evalSteps();
            if (eval != null && evalEvery > 0 && step % evalEvery == 0) {
                listener.onEvaluation(evaluate(step));
            }
        }
        if (step > lastCheckpoint || reason == StopReason.INTERRUPTED) {
            saveCheckpoint(step, batches.position(), lastLoss, tokens);
        }
        if (reason == StopReason.COMPLETED) {
            Path adapterDir = config.outputDir().resolve(ADAPTER_DIR);
            checkpoints.writeAtomically(adapterDir, (dir, s) -> trainStep.saveAdapter(dir), step);
            if (eval != null) {
                listener.onEvaluation(evaluate(step));
            }
        }
        TrainingSummary summary = new TrainingSummary(step, lastLoss, tokens,
                Duration.ofNanos(System.nanoTime() - started), reason);
        listener.onTrainingEnd(summary);
        return summary;
    }

    private void saveCheckpoint(long step, DataPosition position, double loss, long tokens) {
        TrainerState state = new TrainerState(step, position, Map.of("seed", config.seed()), config.hash(), loss,
                tokens);
        CheckpointWriter stateWriter = (dir, s) -> trainStep.saveState(dir);
        CheckpointWriter adapterWriter = (dir, s) -> trainStep.saveAdapter(dir.resolve(ADAPTER_DIR));
        Checkpoint c = checkpoints.save(state, List.of(stateWriter, adapterWriter));
        listener.onCheckpoint(new CheckpointEvent(step, c.directory()));
    }

    /** Mean token loss over the whole evaluation set. */
    public EvalMetrics evaluate(long step) {
        if (eval == null) {
            throw new PetException("no eval_dataset is configured");
        }
        return evaluate(eval, config.runner().batchSize(), trainStep, step);
    }

    /** Mean token loss of {@code trainStep}'s current weights over all of {@code eval}. */
    public static EvalMetrics evaluate(PackedDataset eval, int batchSize, TrainStep trainStep, long step) {
        double sum = 0;
        long count = 0;
        Iterator<Batch> it = eval.evalBatches(batchSize);
        while (it.hasNext()) {
            TrainStep.EvalResult r = trainStep.evaluate(it.next());
            sum += r.lossSum();
            count += r.tokens();
        }
        if (count == 0) {
            throw new PetException("eval_dataset " + eval + " has no tokens to evaluate");
        }
        return new EvalMetrics(step, sum / count, count);
    }
}
