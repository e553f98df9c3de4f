package dev.pet.runtime.metrics;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes {@code metrics.jsonl}: one JSON object per logged step ({@code step}, {@code epoch}, {@code loss},
 * {@code lr}, {@code grad_norm}, {@code tokens}, {@code tokens_per_s}, in a data-parallel run
 * {@code replica_compute_s} (each replica's gradient compute time in that step, by rank), {@code elapsed_s},
 * {@code time}) and one per
 * evaluation ({@code step}, {@code eval_loss}, {@code eval_perplexity}, {@code eval_tokens}). A step is logged when
 * it is a multiple of {@code logSteps} or the last one. Each line is flushed as written. When a run resumes from
 * step N, records after N left by the interrupted run are dropped first, so the file reads like one run.
 * Non-finite numbers are written as {@code null}.
 */
public final class JsonlMetricsWriter implements TrainingListener, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final long logSteps;
    private BufferedWriter out;
    private RunInfo run;
    private long started;
    private long windowTokens;
    private long windowNanos;

    public JsonlMetricsWriter(Path file, long logSteps) {
        this.file = Objects.requireNonNull(file, "file");
        if (logSteps < 0) {
            throw new IllegalArgumentException("logSteps must be >= 0, found " + logSteps);
        }
        this.logSteps = logSteps;
    }

    public Path file() {
        return file;
    }

    @Override
    public void onTrainingBegin(RunInfo run) {
        this.run = run;
        this.started = System.nanoTime();
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            keepRecordsUpTo(run.startStep());
            out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new PetException("cannot open " + file + ": " + e.getMessage(), e);
        }
    }

    private void keepRecordsUpTo(long step) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        List<String> kept = new ArrayList<>();
        if (step > 0) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode node;
                try {
                    node = JSON.readTree(line);
                } catch (IOException e) {
                    continue; // a line cut short by a kill: drop it
                }
                if (node != null && node.path("step").asLong(Long.MAX_VALUE) <= step) {
                    kept.add(line);
                }
            }
        }
        AtomicFiles.writeLines(file, kept);
    }

    @Override
    public void onStep(StepMetrics step) {
        windowTokens += step.tokens();
        windowNanos += step.stepNanos();
        if (logSteps == 0 || (step.step() % logSteps != 0 && step.step() != run.totalSteps())) {
            return;
        }
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("step", step.step());
        record.put("epoch", step.epoch());
        record.put("loss", finite(step.loss()));
        record.put("lr", finite(step.learningRate()));
        record.put("grad_norm", finite(step.gradNorm()));
        record.put("tokens", step.tokens());
        record.put("tokens_per_s", windowNanos == 0 ? null : finite(windowTokens * 1e9 / windowNanos));
        if (!step.replicaComputeNanos().isEmpty()) {
            record.put("replica_compute_s", step.replicaComputeNanos().stream().map(n -> n / 1e9).toList());
        }
        record.put("elapsed_s", (System.nanoTime() - started) / 1e9);
        record.put("time", Instant.now().toString());
        write(record);
        windowTokens = 0;
        windowNanos = 0;
    }

    @Override
    public void onEvaluation(EvalMetrics eval) {
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("step", eval.step());
        record.put("eval_loss", finite(eval.loss()));
        record.put("eval_perplexity", finite(eval.perplexity()));
        record.put("eval_tokens", eval.tokens());
        write(record);
    }

    private static Double finite(double value) {
        return Double.isFinite(value) ? value : null;
    }

    private void write(Map<String, Object> record) {
        if (out == null) {
            throw new IllegalStateException("metrics writer used before onTrainingBegin");
        }
        try {
            out.write(JSON.writeValueAsString(record));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    @Override
    public void onTrainingEnd(TrainingSummary summary) {
        close();
    }

    @Override
    public void close() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot close " + file, e);
            } finally {
                out = null;
            }
        }
    }
}
