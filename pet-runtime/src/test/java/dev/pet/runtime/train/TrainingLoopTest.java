package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.data.TokenSequence;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The loop's bookkeeping, driven by a plain-Java "model": one parameter w fitted by gradient descent to the tokens of
 * each batch. Its losses depend on the exact batches, the step numbers and the learning rates, so they reveal any
 * difference between an interrupted-and-resumed run and an uninterrupted one.
 */
class TrainingLoopTest {
    @TempDir
    Path dir;

    /** Loss = mean over targets of (w - t/10)^2, one SGD step per call. */
    static final class ScalarStep implements TrainStep {
        double w = 0.3;
        int failAtStep = -1;

        @Override
        public StepResult step(List<Batch> microBatches, double lr, long step) {
            if (step == failAtStep) {
                return new StepResult(Double.NaN, Double.NaN);
            }
            double loss = 0;
            double grad = 0;
            long n = 0;
            for (Batch b : microBatches) {
                for (int i = 0; i < b.batchSize(); i++) {
                    for (int t = 1; t <= b.seqLength(); t++) {
                        double target = b.token(i, t) / 10.0;
                        loss += (w - target) * (w - target);
                        grad += 2 * (w - target);
                        n++;
                    }
                }
            }
            w -= lr * grad / n;
            return new StepResult(loss / n, Math.abs(grad / n));
        }

        @Override
        public EvalResult evaluate(Batch b) {
            double sum = 0;
            for (int i = 0; i < b.batchSize(); i++) {
                for (int t = 1; t <= b.seqLength(); t++) {
                    double d = w - b.token(i, t) / 10.0;
                    sum += d * d;
                }
            }
            return new EvalResult(sum, (long) b.batchSize() * b.seqLength());
        }

        @Override
        public void saveState(Path directory) throws IOException {
            Files.writeString(directory.resolve("w.txt"), Double.toString(w));
        }

        @Override
        public void loadState(Path directory) {
            try {
                w = Double.parseDouble(Files.readString(directory.resolve("w.txt")));
            } catch (IOException e) {
                throw new PetException("cannot read state", e);
            }
        }

        @Override
        public void saveAdapter(Path directory) throws IOException {
            Files.createDirectories(directory);
            Files.writeString(directory.resolve("adapter.txt"), Double.toString(w));
        }

        @Override
        public void close() {
        }
    }

    static final class Recorder implements TrainingListener {
        final List<Double> losses = new ArrayList<>();
        final List<Long> steps = new ArrayList<>();
        final List<EvalMetrics> evals = new ArrayList<>();

        @Override
        public void onStep(StepMetrics s) {
            losses.add(s.loss());
            steps.add(s.step());
        }

        @Override
        public void onEvaluation(EvalMetrics e) {
            evals.add(e);
        }
    }

    private static PackedDataset dataset(int tokens) {
        TokenSequence seq = new TokenSequence() {
            @Override
            public long size() {
                return tokens;
            }

            @Override
            public long token(long index) {
                return (index * 7919 + 13) % 31;
            }
        };
        return new PackedDataset(seq, 4, true, "synthetic");
    }

    private RunConfig config(Path out, boolean resume, long maxSteps, long checkpointSteps) {
        String yaml = """
                seed: 7
                output_dir: %s
                resume_training: %s
                model: {model_config: {checkpoint_name_or_path: gpt2-tiny, seq_length: 4, pet_config: {pet_type: lora}}}
                runner_config: {epochs: 3, batch_size: 2, max_steps: %d, gradient_accumulation_steps: 2}
                optimizer: {type: SGD}
                lr_schedule: {type: cosine, learning_rate: 0.2, warmup_steps: 2}
                callbacks: {checkpoint_steps: %d, keep_checkpoints: 2, eval_steps: 5, log_steps: 1}
                """.formatted(out, resume, maxSteps, checkpointSteps);
        return RunConfigLoader.parse(yaml, "test.yaml", List.of());
    }

    /** Runs a loop in {@code config}'s output directory, claimed for the run as finetune does. */
    static TrainingSummary train(RunConfig config, PackedDataset train, PackedDataset eval, TrainStep step,
            TrainingListener listener) {
        try (RunDirectory run = RunDirectory.open(config)) {
            return new TrainingLoop(run, config, train, eval, step, listener, "m", "p").run();
        }
    }

    @Test
    void resumedRunReproducesTheUninterruptedLossCurveExactly() throws Exception {
        Recorder full = new Recorder();
        ScalarStep fullStep = new ScalarStep();
        TrainingSummary done = train(config(dir.resolve("full"), false, 17, 4), dataset(400), null, fullStep, full);
        assertEquals(17, done.steps());
        assertEquals(TrainingSummary.StopReason.COMPLETED, done.reason());

        // First run stops after step 9 (a stop request, as SIGTERM would make), then a new process resumes.
        Path out = dir.resolve("resumed");
        Recorder first = new Recorder();
        ScalarStep firstStep = new ScalarStep();
        TrainingLoop[] loop = new TrainingLoop[1];
        TrainingListener stopper = new TrainingListener() {
            @Override
            public void onStep(StepMetrics s) {
                first.onStep(s);
                if (s.step() == 9) {
                    loop[0].requestStop();
                }
            }
        };
        TrainingSummary interrupted;
        RunConfig firstConfig = config(out, false, 17, 4);
        try (RunDirectory run = RunDirectory.open(firstConfig)) {
            loop[0] = new TrainingLoop(run, firstConfig, dataset(400), null, firstStep, stopper, "m", "p");
            interrupted = loop[0].run();
        }
        assertEquals(TrainingSummary.StopReason.INTERRUPTED, interrupted.reason());
        assertTrue(Files.isDirectory(out.resolve("checkpoint-9")), "a stop writes a checkpoint");
        assertFalse(Files.exists(out.resolve("adapter")), "an interrupted run has no final adapter");

        Recorder second = new Recorder();
        ScalarStep secondStep = new ScalarStep();
        train(config(out, true, 17, 4), dataset(400), null, secondStep, second);
        assertEquals(List.of(10L, 11L, 12L, 13L, 14L, 15L, 16L, 17L), second.steps);

        List<Double> stitched = new ArrayList<>(first.losses);
        stitched.addAll(second.losses);
        assertArrayEquals(full.losses.stream().mapToDouble(Double::doubleValue).toArray(),
                stitched.stream().mapToDouble(Double::doubleValue).toArray(), 0.0);
        assertEquals(Files.readString(dir.resolve("full/adapter/adapter.txt")),
                Files.readString(out.resolve("adapter/adapter.txt")), "same final adapter");
    }

    @Test
    void nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() {
        ScalarStep step = new ScalarStep();
        step.failAtStep = 7;
        Path out = dir.resolve("nan");
        PetException e = assertThrows(PetException.class, () -> train(config(out, false, 17, 3), dataset(400), null,
                step, new Recorder()));
        assertTrue(e.getMessage().contains("loss became NaN at step 7"), e.getMessage());
        assertTrue(e.getMessage().contains("step 6"), e.getMessage());
        assertTrue(Files.isDirectory(out.resolve("checkpoint-6")));
        assertFalse(Files.exists(out.resolve("checkpoint-7")));
    }

    @Test
    void evaluatesOnScheduleAndKeepsOnlyTheNewestCheckpoints() throws Exception {
        Recorder r = new Recorder();
        Path out = dir.resolve("eval");
        train(config(out, false, 12, 3), dataset(400), dataset(40), new ScalarStep(), r);
        assertEquals(List.of(5L, 10L, 12L), r.evals.stream().map(EvalMetrics::step).toList());
        EvalMetrics last = r.evals.get(2);
        assertTrue(last.loss() < r.evals.get(0).loss(), "training lowers the eval loss");
        assertEquals(Math.exp(last.loss()), last.perplexity(), 1e-12);
        try (var s = Files.list(out)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(List.of(RunDirectory.LOCK_FILE, "adapter", "checkpoint-12", "checkpoint-9", RunDirectory.MANIFEST_FILE),
                    names);
        }
    }

    @Test
    void resumingWithAnotherConfigurationIsRefused() {
        Path out = dir.resolve("mismatch");
        train(config(out, false, 4, 2), dataset(400), null, new ScalarStep(), new Recorder());
        RunConfig other = config(out, true, 6, 2);
        PetException e = assertThrows(PetException.class, () -> train(other, dataset(400), null, new ScalarStep(),
                new Recorder()));
        assertTrue(e.getMessage().contains("the config changed since it started (runner_config.max_steps (was 4, now 6))"),
                e.getMessage());
    }

    static void flipByte(Path file, long offset) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        bytes[(int) offset] ^= 0x01;
        Files.write(file, bytes);
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (var walk = Files.walk(from)) {
            for (Path p : walk.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    @Test
    void aByteFlippedAnywhereInTheNewestCheckpointFallsBackToThePreviousOne() throws Exception {
        Recorder full = new Recorder();
        train(config(dir.resolve("full"), false, 17, 4), dataset(400), null, new ScalarStep(), full);

        // A run stopped after step 10 keeps checkpoint-8 and checkpoint-10.
        Path pristine = dir.resolve("pristine");
        RunConfig firstConfig = config(pristine, false, 17, 4);
        try (RunDirectory run = RunDirectory.open(firstConfig)) {
            TrainingLoop[] loop = new TrainingLoop[1];
            loop[0] = new TrainingLoop(run, firstConfig, dataset(400), null, new ScalarStep(), new TrainingListener() {
                @Override
                public void onStep(StepMetrics s) {
                    if (s.step() == 10) {
                        loop[0].requestStop();
                    }
                }
            }, "m", "p");
            loop[0].run();
        }
        List<Path> files;
        try (var walk = Files.walk(pristine.resolve("checkpoint-10"))) {
            files = walk.filter(Files::isRegularFile).toList();
        }
        assertEquals(4, files.size(), "state, adapter, trainer state and manifest: " + files);
        int cases = 0;
        for (Path file : files) {
            long size = Files.size(file);
            for (long offset : new long[] {0, size / 2, size - 1}) {
                Path out = dir.resolve("case-" + cases++);
                copyTree(pristine, out);
                flipByte(out.resolve(pristine.relativize(file).toString()), offset);
                Recorder resumed = new Recorder();
                train(config(out, true, 17, 4), dataset(400), null, new ScalarStep(), resumed);
                String what = pristine.relativize(file) + " byte " + offset;
                assertEquals(List.of(9L, 10L, 11L, 12L, 13L, 14L, 15L, 16L, 17L), resumed.steps,
                        "resumed from checkpoint-8 after flipping " + what);
                assertArrayEquals(full.losses.subList(8, 17).stream().mapToDouble(Double::doubleValue).toArray(),
                        resumed.losses.stream().mapToDouble(Double::doubleValue).toArray(), 0.0,
                        "never trains on the corrupt state: " + what);
            }
        }
    }

    @Test
    void resumeIsRefusedWhenNoCheckpointIsIntact() throws Exception {
        Path out = dir.resolve("broken");
        train(config(out, false, 8, 4), dataset(400), null, new ScalarStep(), new Recorder());
        flipByte(out.resolve("checkpoint-4/w.txt"), 0);
        flipByte(out.resolve("checkpoint-8/trainer_state.json"), 20);
        ScalarStep step = new ScalarStep();
        PetException e = assertThrows(PetException.class, () -> train(config(out, true, 8, 4), dataset(400), null,
                step, new Recorder()));
        assertTrue(e.getMessage().startsWith("no intact checkpoint to resume from in " + out), e.getMessage());
        assertTrue(e.getMessage().contains(out.resolve("checkpoint-4/w.txt") + " does not match its SHA-256"),
                e.getMessage());
        assertTrue(e.getMessage().contains(out.resolve("checkpoint-8/trainer_state.json") + " does not match"),
                e.getMessage());
        assertEquals(0.3, step.w, 0.0, "nothing was trained");
    }
}
