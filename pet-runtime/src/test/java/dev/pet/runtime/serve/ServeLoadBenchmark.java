package dev.pet.runtime.serve;

import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pet serve} under load: 16 concurrent loopback clients for 60 s (-Dpet.bench.seconds) across 3 adapters,
 * each sending non-streaming completions (prompt ~8 tokens, max_tokens 16, sampling, a seed per request). Reports
 * errors, throughput, p50/p99 latency, and the process's resident memory and post-GC heap every 10 s (flat = no
 * growth per request). Runs only on request:
 *
 * <pre>./mvnw -B -q -o -pl pet-runtime -am test -Dtest=ServeLoadBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dpet.bench=true</pre>
 *
 * Results go to stdout and to {@code pet-runtime/target/benchmarks/serve-load.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class ServeLoadBenchmark {
    private static final List<String> ADAPTERS = List.of("alpha", "beta", "gamma");
    private static final String[] PROMPTS = {"The keeper of the lamp", "Sound the horn in fog", "At dusk the harbour",
        "Light the lamp and"};

    @Test
    void sixteenClientsAcrossThreeAdapters(@TempDir Path dir) throws Exception {
        int seconds = Integer.getInteger("pet.bench.seconds", 60);
        int clients = 16;
        ServeOptions options = ServeOptions.defaults();
        options = new ServeOptions(options.host(), 0, null, options.maxTokens(), options.maxBodyBytes(),
                Duration.ofSeconds(120), options.readTimeout(), 2, options.shutdownGrace());
        StringBuilder report = new StringBuilder(String.format("pet serve load: gpt2-tiny + LoRA r=4, %d adapters, %d "
                + "clients, %d s, max_concurrent %d, max_tokens 16, %s, %d cores%n", ADAPTERS.size(), clients, seconds,
                options.maxConcurrent(), LocalDate.now(), Runtime.getRuntime().availableProcessors()));
        try (CompletionServer server = CompletionServer.start(ServeFixture.served(ServeFixture.adapters(dir, ADAPTERS)),
                options)) {
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            String url = "http://127.0.0.1:" + server.port() + "/v1/completions";
            List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
            AtomicLong errors = new AtomicLong();
            AtomicLong tokens = new AtomicLong();
            long end = System.nanoTime() + seconds * 1_000_000_000L;
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            List<Future<?>> futures = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int client = c;
                futures.add(pool.submit(() -> {
                    int i = 0;
                    while (System.nanoTime() < end) {
                        String adapter = ADAPTERS.get((client + i) % ADAPTERS.size());
                        String body = "{\"model\":\"" + adapter + "\",\"prompt\":\"" + PROMPTS[i % PROMPTS.length]
                                + "\",\"max_tokens\":16,\"temperature\":0.8,\"top_p\":0.95,\"seed\":" + (client * 100_000 + i)
                                + "}";
                        i++;
                        long t0 = System.nanoTime();
                        try {
                            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url))
                                    .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(body))
                                    .build(), HttpResponse.BodyHandlers.ofString());
                            if (r.statusCode() != 200) {
                                errors.incrementAndGet();
                                continue;
                            }
                            int at = r.body().indexOf("\"completion_tokens\":");
                            tokens.addAndGet(Long.parseLong(r.body().substring(at + 20).split("[,}]")[0]));
                            latencies.add(System.nanoTime() - t0);
                        } catch (Exception e) {
                            errors.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            long start = System.nanoTime();
            List<String> memory = new ArrayList<>();
            while (System.nanoTime() < end) {
                Thread.sleep(Math.min(10_000, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
                memory.add(String.format("t=%.0fs rss=%d MiB heap-after-gc=%d MiB requests=%d",
                        (System.nanoTime() - start) / 1e9, rssMiB(), heapAfterGcMiB(), latencies.size()));
            }
            for (Future<?> f : futures) {
                f.get();
            }
            pool.shutdown();
            double elapsed = (System.nanoTime() - start) / 1e9;
            List<Long> sorted = new ArrayList<>(latencies);
            Collections.sort(sorted);
            report.append(String.format("requests %d, errors %d, %.2f requests/s, %.1f completion tokens/s, "
                    + "latency p50 %.0f ms, p99 %.0f ms%n", sorted.size(), errors.get(), sorted.size() / elapsed,
                    tokens.get() / elapsed, percentile(sorted, 0.50) / 1e6, percentile(sorted, 0.99) / 1e6));
            memory.forEach(m -> report.append("  ").append(m).append('\n'));
        }
        System.out.print(report);
        Path out = Path.of("target", "benchmarks", "serve-load.txt");
        Files.createDirectories(out.getParent());
        Files.writeString(out, report);
    }

    private static double percentile(List<Long> sorted, double p) {
        return sorted.isEmpty() ? Double.NaN : sorted.get((int) Math.min(sorted.size() - 1, Math.floor(p * sorted.size())));
    }

    private static long rssMiB() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
        }
        return -1;
    }

    private static long heapAfterGcMiB() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() >> 20;
    }
}
