package dev.pet.runtime.metrics;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetricsListenersTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final RunInfo RUN = new RunInfo("gpt2-tiny", "lora", 5, 0, 64);

    static StepMetrics step(long n, double loss) {
        return new StepMetrics(n, 0, loss, 1e-3 * n, 0.5 + n, 64, 2_000_000L * n);
    }

    @Test
    void micrometerMetersAreRegisteredTaggedAndUpdated() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerListener listener = new MicrometerListener(registry);
        listener.onTrainingBegin(RUN);
        listener.onStep(step(1, 4.0));
        listener.onStep(step(2, 3.5));
        listener.onEvaluation(new EvalMetrics(2, 2.0, 1000));

        assertEquals(3.5, registry.get("pet.train.loss").tag("model", "gpt2-tiny").tag("pet", "lora").gauge().value());
        assertEquals(2e-3, registry.get("pet.train.learning.rate").gauge().value());
        assertEquals(2.5, registry.get("pet.train.grad.norm").gauge().value());
        Timer timer = registry.get("pet.train.step").timer();
        assertEquals(2, timer.count());
        assertEquals(6.0, timer.totalTime(TimeUnit.MILLISECONDS), 1e-9);
        assertEquals(128.0, registry.get("pet.train.tokens").counter().count());
        assertEquals(2.0, registry.get("pet.eval.loss").gauge().value());
        assertEquals(Math.exp(2.0), registry.get("pet.eval.perplexity").gauge().value(), 1e-12);
        assertTrue(registry.get("pet.memory.heap.used").gauge().value() > 0);
        assertTrue(registry.get("pet.memory.direct.used").gauge().value() >= 0);
        for (Meter meter : registry.getMeters()) {
            assertEquals("gpt2-tiny", meter.getId().getTag("model"), meter.getId().getName());
            assertEquals("lora", meter.getId().getTag("pet"), meter.getId().getName());
        }
    }

    @Test
    void replicaComputeTimesGoToJsonlAndToOneTimerPerRank(@TempDir Path dir) throws Exception {
        StepMetrics s = new StepMetrics(1, 0, 2.0, 1e-3, 1.0, 64, 9_000_000L, List.of(3_000_000L, 5_000_000L));
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerListener listener = new MicrometerListener(registry);
        listener.onTrainingBegin(RUN);
        listener.onStep(s);
        listener.onStep(s);
        Timer rank1 = registry.get("pet.train.replica.compute").tag("rank", "1").tag("model", "gpt2-tiny").timer();
        assertEquals(2, rank1.count());
        assertEquals(10.0, rank1.totalTime(TimeUnit.MILLISECONDS), 1e-9);
        assertEquals(6.0, registry.get("pet.train.replica.compute").tag("rank", "0").timer()
                .totalTime(TimeUnit.MILLISECONDS), 1e-9);
        Path file = dir.resolve("metrics.jsonl");
        try (JsonlMetricsWriter writer = new JsonlMetricsWriter(file, 1)) {
            writer.onTrainingBegin(RUN);
            writer.onStep(s);
            writer.onStep(step(2, 1.0));
        }
        List<JsonNode> lines = readJsonl(file);
        assertEquals(List.of(0.003, 0.005), JSON.convertValue(lines.get(0).get("replica_compute_s"), List.class));
        assertFalse(lines.get(1).has("replica_compute_s"), "one process: no replica times");
    }

    @Test
    void jsonlHasOneObjectPerLoggedStepAndEval(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("out/metrics.jsonl");
        try (JsonlMetricsWriter writer = new JsonlMetricsWriter(file, 2)) {
            writer.onTrainingBegin(RUN);
            for (int n = 1; n <= 5; n++) {
                writer.onStep(step(n, n == 3 ? Double.NaN : 5.0 - n));
                if (n == 4) {
                    writer.onEvaluation(new EvalMetrics(4, 1.25, 500));
                }
            }
            writer.onTrainingEnd(new TrainingSummary(5, 0, 320, Duration.ofSeconds(1), TrainingSummary.StopReason.COMPLETED));
        }
        List<JsonNode> lines = readJsonl(file);
        assertEquals(4, lines.size());
        assertEquals(List.of(2L, 4L, 4L, 5L), lines.stream().map(n -> n.get("step").asLong()).toList());
        JsonNode s2 = lines.get(0);
        assertEquals(3.0, s2.get("loss").asDouble());
        assertEquals(2e-3, s2.get("lr").asDouble());
        assertEquals(2.5, s2.get("grad_norm").asDouble());
        assertEquals(64, s2.get("tokens").asLong());
        // steps 1 and 2: 128 tokens in 2 ms + 4 ms
        assertEquals(128 / 0.006, s2.get("tokens_per_s").asDouble(), 1e-6);
        assertTrue(s2.get("elapsed_s").asDouble() >= 0);
        assertTrue(s2.has("time") && s2.has("epoch"));
        JsonNode eval = lines.get(2);
        assertEquals(1.25, eval.get("eval_loss").asDouble());
        assertEquals(Math.exp(1.25), eval.get("eval_perplexity").asDouble(), 1e-12);
        assertEquals(5, lines.get(3).get("step").asLong(), "last step is always logged");
    }

    @Test
    void nonFiniteValuesAreWrittenAsNull(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("metrics.jsonl");
        try (JsonlMetricsWriter writer = new JsonlMetricsWriter(file, 1)) {
            writer.onTrainingBegin(RUN);
            writer.onStep(new StepMetrics(1, 0, Double.POSITIVE_INFINITY, 1e-3, Double.NaN, 10, 1000));
        }
        JsonNode line = readJsonl(file).get(0);
        assertTrue(line.get("loss").isNull());
        assertTrue(line.get("grad_norm").isNull());
    }

    @Test
    void resumingDropsRecordsAfterTheCheckpointStep(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("metrics.jsonl");
        try (JsonlMetricsWriter first = new JsonlMetricsWriter(file, 1)) {
            first.onTrainingBegin(RUN);
            for (int n = 1; n <= 4; n++) {
                first.onStep(step(n, 5.0 - n));
            }
        }
        Files.writeString(file, Files.readString(file) + "{\"step\": 5, \"loss\": 0.", java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
        try (JsonlMetricsWriter resumed = new JsonlMetricsWriter(file, 1)) {
            resumed.onTrainingBegin(new RunInfo("gpt2-tiny", "lora", 5, 2, 64));
            resumed.onStep(step(3, 1.75));
        }
        List<JsonNode> lines = readJsonl(file);
        assertEquals(List.of(1L, 2L, 3L), lines.stream().map(n -> n.get("step").asLong()).toList());
        assertEquals(1.75, lines.get(2).get("loss").asDouble());
    }

    @Test
    void plainProgressLinesAppearEveryLogStepsAndAtTheEnd() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressListener progress = new ProgressListener(new PrintStream(bytes, true, StandardCharsets.UTF_8), false, 2);
        progress.onTrainingBegin(RUN);
        for (int n = 1; n <= 5; n++) {
            progress.onStep(step(n, 5.0 - n));
        }
        progress.onTrainingEnd(new TrainingSummary(5, 0.0, 320, Duration.ofSeconds(65), TrainingSummary.StopReason.COMPLETED));
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(5, lines.size(), lines.toString());
        assertTrue(lines.get(1).startsWith("step 2/5  loss 3.0000  lr 2.000e-03"), lines.get(1));
        assertTrue(lines.get(3).startsWith("step 5/5"), lines.get(3));
        assertFalse(lines.get(1).contains("\r") || lines.get(1).contains("["));
        assertEquals("completed after 5 steps: loss 0.0000, 320 tokens in 0:01:05", lines.get(4));
    }

    @Test
    void progressBarShowsTokensPerSecondAndEta() {
        ProgressListener bar = new ProgressListener(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), true, 1);
        bar.onTrainingBegin(new RunInfo("m", "lora", 10, 2, 64));
        bar.onStep(new StepMetrics(3, 0, 2.5, 1e-4, 1, 1000, 500_000_000L));
        // one step done since the resume at step 2, 4 s elapsed: 7 steps left take 28 s; 1000 tokens in 0.5 s
        String line = bar.line(new StepMetrics(3, 0, 2.5, 1e-4, 1, 1000, 500_000_000L), 4_000_000_000L);
        assertEquals("[#######.................] step 3/10  loss 2.5000  lr 1.000e-04  2000 tok/s  ETA 0:00:28", line);
    }

    @Test
    void prometheusEndpointServesTheMeters() throws Exception {
        try (PrometheusEndpoint endpoint = PrometheusEndpoint.start("127.0.0.1", 0)) {
            MicrometerListener listener = new MicrometerListener(endpoint.registry());
            listener.onTrainingBegin(RUN);
            listener.onStep(step(1, 4.25));
            HttpURLConnection connection = (HttpURLConnection)
                    new URL("http://127.0.0.1:" + endpoint.port() + "/metrics").openConnection();
            assertEquals(200, connection.getResponseCode());
            String body;
            try (InputStream in = connection.getInputStream()) {
                body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            assertTrue(body.contains("pet_train_loss{model=\"gpt2-tiny\",pet=\"lora\"} 4.25"), body);
            assertTrue(body.contains("pet_train_tokens_total"), body);
        }
    }

    @Test
    void lossCurveIsRenderedToAPngOfTheRequestedSize(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("metrics.jsonl");
        try (JsonlMetricsWriter writer = new JsonlMetricsWriter(file, 1)) {
            writer.onTrainingBegin(new RunInfo("m", "lora", 40, 0, 1));
            for (int n = 1; n <= 40; n++) {
                writer.onStep(new StepMetrics(n, 0, 5 * Math.exp(-n / 10.0), 1e-3, 1, 10, 1000));
                if (n % 10 == 0) {
                    writer.onEvaluation(new EvalMetrics(n, 5.5 * Math.exp(-n / 12.0), 100));
                }
            }
        }
        LossCurvePlot.Curves curves = LossCurvePlot.read(file);
        assertEquals(40, curves.train().size());
        assertEquals(4, curves.eval().size());
        Path png = dir.resolve("plots/loss.png");
        LossCurvePlot.render(file, png, 640, 400);
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(640, image.getWidth());
        assertEquals(400, image.getHeight());
        int blue = 0;
        int red = 0;
        for (int x = 0; x < image.getWidth(); x++) {
            for (int y = 0; y < image.getHeight(); y++) {
                int rgb = image.getRGB(x, y) & 0xFFFFFF;
                blue += rgb == 0x1F77B4 ? 1 : 0;
                red += rgb == 0xD62728 ? 1 : 0;
            }
        }
        assertTrue(blue > 200, "train curve drawn: " + blue);
        assertTrue(red > 50, "eval curve drawn: " + red);
        Path empty = Files.writeString(dir.resolve("empty.jsonl"), "");
        assertThrows(dev.pet.api.PetException.class, () -> LossCurvePlot.render(empty, dir.resolve("e.png"), 640, 400));
    }

    private static List<JsonNode> readJsonl(Path file) throws Exception {
        List<JsonNode> nodes = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            nodes.add(JSON.readTree(line));
        }
        return nodes;
    }
}
