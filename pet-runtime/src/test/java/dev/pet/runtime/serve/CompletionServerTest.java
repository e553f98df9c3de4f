package dev.pet.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** pet serve over loopback: completions per adapter, streaming, metrics, auth, bad input, slow clients, shutdown. */
class CompletionServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "s3cret-key";
    @TempDir
    static Path dir;
    static CompletionServer server;
    static HttpClient http;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        ServedModel served = ServeFixture.served(ServeFixture.adapters(dir, List.of("alpha", "beta")));
        server = CompletionServer.start(served, ServeOptions.defaults().withApiKey(KEY)
                .withTimeouts(Duration.ofSeconds(30), Duration.ofSeconds(2)));
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        base = "http://127.0.0.1:" + server.port();
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static HttpResponse<String> post(String path, String body, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json");
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(String path, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30)).GET();
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode complete(String json) throws Exception {
        HttpResponse<String> r = post("/v1/completions", json, KEY);
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    static String request(String model, String prompt, int maxTokens, long seed) {
        return JSON.createObjectNode().put("model", model).put("prompt", prompt).put("max_tokens", maxTokens)
                .put("temperature", 0.8).put("top_p", 0.95).put("seed", seed).toString();
    }

    @Test
    void listsTheBaseAndTheRegisteredAdapters() throws Exception {
        JsonNode models = JSON.readTree(get("/v1/models", KEY).body());
        List<String> ids = new ArrayList<>();
        models.get("data").forEach(m -> ids.add(m.get("id").asText()));
        assertEquals(List.of("gpt2-tiny", "alpha", "beta"), ids);
        assertEquals(200, get("/health", null).statusCode(), "health needs no key");
    }

    @Test
    void eachAdapterGeneratesItsOwnTextReproduciblyBySeed() throws Exception {
        JsonNode a = complete(request("alpha", "The keeper", 8, 1));
        JsonNode b = complete(request("beta", "The keeper", 8, 1));
        JsonNode m = complete(request("gpt2-tiny", "The keeper", 8, 1));
        String ta = a.get("choices").get(0).get("text").asText();
        assertEquals(ta, complete(request("alpha", "The keeper", 8, 1)).get("choices").get(0).get("text").asText());
        assertNotEquals(ta, b.get("choices").get(0).get("text").asText());
        assertNotEquals(ta, m.get("choices").get(0).get("text").asText());
        assertEquals("text_completion", a.get("object").asText());
        assertEquals(8, a.get("usage").get("completion_tokens").asInt());
        assertEquals("length", a.get("choices").get(0).get("finish_reason").asText());
        assertEquals(a.get("usage").get("prompt_tokens").asInt() + 8, a.get("usage").get("total_tokens").asInt());
    }

    @Test
    void streamsServerSentEventsThatAddUpToTheCompletion() throws Exception {
        String plain = complete(request("alpha", "Sound the", 10, 4)).get("choices").get(0).get("text").asText();
        String body = JSON.createObjectNode().put("model", "alpha").put("prompt", "Sound the").put("max_tokens", 10)
                .put("temperature", 0.8).put("top_p", 0.95).put("seed", 4).put("stream", true).toString();
        HttpResponse<String> r = post("/v1/completions", body, KEY);
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        StringBuilder text = new StringBuilder();
        String finish = null;
        List<String> events = r.body().lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertEquals("[DONE]", events.get(events.size() - 1));
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode c = JSON.readTree(e).get("choices").get(0);
            text.append(c.get("text").asText());
            if (!c.get("finish_reason").isNull()) {
                finish = c.get("finish_reason").asText();
            }
        }
        assertEquals(plain, text.toString());
        assertEquals("length", finish);
    }

    @Test
    void stopStringsAndBatchedPrompts() throws Exception {
        String full = complete(request("beta", "light the", 12, 2)).get("choices").get(0).get("text").asText();
        String stop = full.substring(4, 6);
        JsonNode cut = complete(JSON.createObjectNode().put("model", "beta").put("prompt", "light the")
                .put("max_tokens", 12).put("temperature", 0.8).put("top_p", 0.95).put("seed", 2).put("stop", stop)
                .toString());
        assertEquals(full.substring(0, full.indexOf(stop)), cut.get("choices").get(0).get("text").asText());
        assertEquals("stop", cut.get("choices").get(0).get("finish_reason").asText());
        var batch = JSON.createObjectNode().put("model", "beta").put("max_tokens", 12).put("temperature", 0.8)
                .put("top_p", 0.95).put("seed", 2);
        batch.putArray("prompt").add("light the").add("The keeper of the lamp");
        JsonNode both = complete(batch.toString());
        assertEquals(full, both.get("choices").get(0).get("text").asText());
        assertEquals(1, both.get("choices").get(1).get("index").asInt());
    }

    @Test
    void concurrentRequestsForDifferentAdaptersDoNotMix() throws Exception {
        List<String> names = List.of("alpha", "beta", "gpt2-tiny");
        Map<String, String> expected = new LinkedHashMap<>();
        for (String n : names) {
            expected.put(n, complete(request(n, "In fog", 6, 9)).get("choices").get(0).get("text").asText());
        }
        ExecutorService pool = Executors.newFixedThreadPool(6);
        try {
            List<Future<String[]>> futures = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                String n = names.get(i % 3);
                futures.add(pool.submit(() -> new String[] {n,
                        complete(request(n, "In fog", 6, 9)).get("choices").get(0).get("text").asText()}));
            }
            for (Future<String[]> f : futures) {
                String[] got = f.get();
                assertEquals(expected.get(got[0]), got[1], got[0]);
            }
        } finally {
            pool.shutdownNow();
        }
        String metrics = get("/metrics", KEY).body();
        assertTrue(metrics.contains("pet_serve_requests_total{adapter=\"alpha\",status=\"200\"}"), metrics);
        assertTrue(metrics.contains("pet_serve_tokens_total{adapter=\"beta\",kind=\"completion\"}"), metrics);
        assertTrue(metrics.contains("pet_serve_request_latency_seconds_count{adapter=\"gpt2-tiny\"}"), metrics);
    }

    @Test
    void refusesBadRequestsWithJsonErrorsAndStaysUp() throws Exception {
        assertError(post("/v1/completions", "{not json", KEY), 400, "not valid JSON");
        assertError(post("/v1/completions", "[1,2]", KEY), 400, "JSON object");
        assertError(post("/v1/completions", "{\"model\":\"alpha\",\"prompt\":\"x\",\"temprature\":1}", KEY), 400,
                "unknown field 'temprature'");
        assertError(post("/v1/completions", "{\"model\":\"alpha\",\"prompt\":\"x\",\"max_tokens\":-1}", KEY), 400,
                "'max_tokens' must be in [1, 256]");
        assertError(post("/v1/completions", "{\"model\":\"alpha\",\"prompt\":\"x\",\"max_tokens\":1000000000000}", KEY),
                400, "'max_tokens' must be in");
        assertError(post("/v1/completions", "{\"model\":\"alpha\",\"prompt\":\"x\",\"max_tokens\":2.5}", KEY), 400,
                "must be an integer");
        assertError(post("/v1/completions", "{\"model\":\"alpha\",\"prompt\":\"x\",\"temperature\":\"hot\"}", KEY), 400,
                "must be a number");
        assertError(post("/v1/completions", "{\"model\":\"gamma\",\"prompt\":\"x\"}", KEY), 404, "'gamma' is not served");
        assertError(post("/v1/completions", "{\"model\":\"../adapters/alpha\",\"prompt\":\"x\"}", KEY), 404,
                "is not served");
        assertError(post("/v1/completions", "{\"prompt\":\"x\"}", KEY), 400, "'model' is required");
        assertError(post("/v1/completions", "{\"model\":\"alpha\"}", KEY), 400, "'prompt' is required");
        // A prompt that fits the body limit but not the model's 128 positions.
        assertError(post("/v1/completions", request("alpha", "lamp ".repeat(200), 8, 1), KEY), 400,
                "prompt too long");
        // 10 MB: refused by size before anything is parsed.
        String huge = "{\"model\":\"alpha\",\"prompt\":\"" + "a".repeat(10 << 20) + "\"}";
        assertError(post("/v1/completions", huge, KEY), 413, "at most");
        assertError(get("/v1/completions", KEY), 405, "use POST");
        assertError(get("/v2/anything", KEY), 404, "no such endpoint");
        assertEquals(200, get("/health", null).statusCode());
    }

    @Test
    void requiresTheBearerKeyComparedInConstantTime() throws Exception {
        assertError(post("/v1/completions", request("alpha", "x", 2, 1), null), 401, "missing Authorization");
        assertError(post("/v1/completions", request("alpha", "x", 2, 1), "wrong"), 401, "invalid API key");
        assertError(get("/v1/models", "s3cret-kez"), 401, "invalid API key");
        assertError(get("/metrics", null), 401, "missing");
        assertEquals(200, get("/v1/models", KEY).statusCode());
    }

    @Test
    void dropsClientsThatSendHeadersOrBodiesTooSlowly() throws Exception {
        // Read timeout is 2 s (the JVM-wide setting; the test JVM sets sun.net.httpserver.maxReqTime=2).
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(15_000);
            OutputStream out = s.getOutputStream();
            out.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            long t0 = System.nanoTime();
            assertClosed(s.getInputStream());
            assertTrue(System.nanoTime() - t0 < 12_000_000_000L, "dropped within the read timeout");
        }
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(15_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY
                    + "\r\nContent-Length: 100\r\n\r\n{\"model\":").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertClosed(s.getInputStream());
        }
        assertEquals(200, get("/health", null).statusCode(), "the server stays up");
    }

    /** The server ends the connection: EOF, a reset, or at most an error response before EOF. */
    private static void assertClosed(InputStream in) throws Exception {
        try {
            byte[] buf = new byte[4096];
            while (in.read(buf) >= 0) {
                // Drain whatever error response comes first.
            }
        } catch (java.net.SocketException reset) {
            // Also closed.
        }
    }

    private static void assertError(HttpResponse<String> r, int status, String text) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertTrue(e.get("message").asText().contains(text), e.toString());
        assertEquals(status, e.get("code").asInt());
    }

    @Test
    void shutsDownGracefullyLettingRunningCompletionsFinish() throws Exception {
        RunConfig config = RunConfigLoader.parse("{model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}}",
                "base only", List.of());
        CompletionServer s = CompletionServer.start(new DefaultPetEngine().openServed(config, null, ServeFixture.env()),
                ServeOptions.defaults());
        String url = "http://127.0.0.1:" + s.port() + "/v1/completions";
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<HttpResponse<String>> running = pool.submit(() -> http.send(HttpRequest.newBuilder(URI.create(url))
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.createObjectNode().put("model", "gpt2-tiny")
                            .put("prompt", "The keeper").put("max_tokens", 60).put("stream", true).toString()))
                    .build(), HttpResponse.BodyHandlers.ofString()));
            Thread.sleep(1500);
            s.close();
            HttpResponse<String> r = running.get();
            assertEquals(200, r.statusCode());
            assertTrue(r.body().trim().endsWith("data: [DONE]"), "the running completion finished: " + r.body());
            assertThrows(ConnectException.class, () -> new Socket("127.0.0.1", s.port()).close(),
                    "no new connections after shutdown");
        } finally {
            pool.shutdownNow();
        }
    }

    /** With nothing running, close() returns at once rather than after the 30 s shutdown grace. */
    @Test
    void closesAtOnceWhenIdle() throws Exception {
        RunConfig config = RunConfigLoader.parse("{model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}}",
                "base only", List.of());
        CompletionServer s = CompletionServer.start(new DefaultPetEngine().openServed(config, null, ServeFixture.env()),
                ServeOptions.defaults());
        HttpResponse<String> health = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port()
                + "/health")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, health.statusCode());
        Thread.sleep(300); // the exchange has ended on the server's side too
        long t0 = System.nanoTime();
        s.close();
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(ServeOptions.defaults().shutdownGrace().toSeconds() >= 10, "the grace this test is about");
        assertTrue(seconds < 5, "close() took " + seconds + " s");
        assertThrows(ConnectException.class, () -> new Socket("127.0.0.1", s.port()).close());
    }
}
