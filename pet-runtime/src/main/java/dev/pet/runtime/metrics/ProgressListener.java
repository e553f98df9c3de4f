package dev.pet.runtime.metrics;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;

/**
 * Shows progress: on a terminal a single redrawn line with a bar, loss, learning rate, tokens/s and ETA; otherwise
 * (logs, CI) a plain line every {@code logSteps} steps and at the end.
 */
public final class ProgressListener implements TrainingListener {
    private static final int BAR = 24;

    private final PrintStream out;
    private final boolean interactive;
    private final long logSteps;
    private RunInfo run;
    private long begin;
    private long tokensSinceBegin;
    private long nanosSinceBegin;

    public ProgressListener(PrintStream out, boolean interactive, long logSteps) {
        this.out = Objects.requireNonNull(out, "out");
        this.interactive = interactive;
        this.logSteps = logSteps;
    }

    /** A progress bar when the JVM has a console, plain lines on {@code System.err} otherwise. */
    public static ProgressListener forConsole(long logSteps) {
        return new ProgressListener(System.err, System.console() != null, logSteps);
    }

    @Override
    public void onTrainingBegin(RunInfo run) {
        this.run = run;
        this.begin = System.nanoTime();
        out.printf(Locale.ROOT, "training %s with %s: steps %d..%d%n", run.model(), run.pet(), run.startStep() + 1,
                run.totalSteps());
    }

    @Override
    public void onStep(StepMetrics step) {
        tokensSinceBegin += step.tokens();
        nanosSinceBegin += step.stepNanos();
        boolean last = step.step() == run.totalSteps();
        if (interactive) {
            out.print("\r" + line(step, System.nanoTime() - begin));
            if (last) {
                out.println();
            }
            out.flush();
        } else if (last || (logSteps > 0 && step.step() % logSteps == 0)) {
            out.println(line(step, System.nanoTime() - begin));
        }
    }

    /** One progress line for {@code step}, {@code elapsedNanos} after the run (or resume) began. */
    String line(StepMetrics step, long elapsedNanos) {
        long total = run.totalSteps();
        long done = step.step() - run.startStep();
        long remaining = total - step.step();
        double secondsPerStep = done <= 0 ? 0 : elapsedNanos / 1e9 / done;
        double tokensPerSecond = nanosSinceBegin == 0 ? 0 : tokensSinceBegin * 1e9 / nanosSinceBegin;
        StringBuilder sb = new StringBuilder();
        if (interactive) {
            int filled = (int) Math.min(BAR, BAR * step.step() / total);
            sb.append('[').append("#".repeat(filled)).append(".".repeat(BAR - filled)).append("] ");
        }
        sb.append(String.format(Locale.ROOT, "step %d/%d  loss %.4f  lr %.3e  %.0f tok/s  ETA %s", step.step(), total,
                step.loss(), step.learningRate(), tokensPerSecond, duration(Math.round(secondsPerStep * remaining))));
        return sb.toString();
    }

    static String duration(long seconds) {
        return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }

    @Override
    public void onEvaluation(EvalMetrics eval) {
        if (interactive) {
            out.println();
        }
        out.printf(Locale.ROOT, "eval at step %d: loss %.4f  perplexity %.2f%n", eval.step(), eval.loss(), eval.perplexity());
    }

    @Override
    public void onCheckpoint(CheckpointEvent checkpoint) {
        if (!interactive) {
            out.println("checkpoint " + checkpoint.directory());
        }
    }

    @Override
    public void onTrainingEnd(TrainingSummary summary) {
        out.printf(Locale.ROOT, "%s after %d steps: loss %.4f, %d tokens in %s%n",
                summary.reason().name().toLowerCase(Locale.ROOT).replace('_', ' '), summary.steps(), summary.finalLoss(),
                summary.tokens(), duration(summary.elapsed().toSeconds()));
    }
}
