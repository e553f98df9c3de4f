package dev.pet.runtime.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.pet.api.PetException;
import dev.pet.engine.EngineException;
import dev.pet.engine.OrtAdapter;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextGenerator;
import dev.pet.runtime.generate.TextSink;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * {@code pet serve}: an OpenAI-compatible completions server over one {@link ServedModel}, on the JDK's HTTP server.
 * {@code POST /v1/completions} (JSON, or server-sent events with {@code stream}), {@code GET /v1/models},
 * {@code GET /health}, {@code GET /metrics} (Prometheus). Every refusal is a 4xx/5xx with a JSON error body; the
 * server never answers with a stack trace and stays up. Completions run at most {@code maxConcurrent} at a time
 * (ONNX Runtime sessions run concurrently; the bound keeps memory and latency predictable); the rest wait for a slot
 * within their timeout.
 */
public final class CompletionServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.serve");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ServedModel model;
    private final ServeOptions options;
    private final HttpServer server;
    private final ExecutorService executor;
    private final Semaphore slots;
    private final PrometheusMeterRegistry registry;
    private final byte[] apiKey;
    private final AtomicInteger seeds = new AtomicInteger();
    /**
     * Requests being handled, which {@link #close} waits for itself: JDK 17's {@code HttpServer.stop(delay)} waits the
     * whole delay when no exchange is open at the moment it is called (fixed in JDK 21, JDK-8304065), so an idle
     * server took the full shutdown grace to stop.
     */
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean closed;

    private CompletionServer(ServedModel model, ServeOptions options) throws IOException {
        this.model = model;
        this.options = options;
        this.slots = new Semaphore(options.maxConcurrent(), true);
        this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        this.apiKey = options.apiKey() == null ? null : options.apiKey().getBytes(StandardCharsets.UTF_8);
        this.server = HttpServer.create(new InetSocketAddress(options.host(), options.port()), 64);
        AtomicInteger n = new AtomicInteger();
        // Every accepted request needs a thread at once: the JDK server's read timeout runs from the request's
        // arrival, so a request queued behind busy threads would be dropped as a slow client. Requests waiting for a
        // generation slot hold a thread each; the pool's size bounds them (the listen backlog queues the rest).
        this.executor = Executors.newFixedThreadPool(Math.max(64, options.maxConcurrent() * 16), r -> {
            Thread t = new Thread(r, "pet-serve-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/", this::route);
    }

    /**
     * Starts serving. The read timeout (slow clients) is the JDK HTTP server's {@code sun.net.httpserver.maxReqTime},
     * which is read once per JVM: the first server started fixes it (a value already set on the command line wins).
     */
    public static CompletionServer start(ServedModel model, ServeOptions options) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(options, "options");
        long readSeconds = Math.max(1, options.readTimeout().toSeconds());
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) {
            System.setProperty("sun.net.httpserver.maxReqTime", Long.toString(readSeconds));
        }
        if (System.getProperty("sun.net.httpserver.maxRspTime") == null) {
            // A client that stops reading its response is dropped too (streams write in small chunks).
            System.setProperty("sun.net.httpserver.maxRspTime",
                    Long.toString(Math.max(readSeconds, options.requestTimeout().toSeconds() + readSeconds)));
        }
        try {
            CompletionServer s = new CompletionServer(model, options);
            s.server.start();
            return s;
        } catch (IOException e) {
            throw new PetException("cannot listen on " + options.host() + ":" + options.port() + ": " + e.getMessage(),
                    e);
        }
    }

    public int port() {
        return server.getAddress().getPort();
    }

    public String host() {
        return server.getAddress().getHostString();
    }

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    private void route(HttpExchange ex) {
        inFlight.incrementAndGet();
        try (ex) {
            String path = ex.getRequestURI().getPath();
            try {
                if (closed) {
                    throw new ApiError(503, "unavailable", "the server is shutting down");
                }
                switch (path) {
                    case "/health" -> {
                        requireMethod(ex, "GET");
                        sendJson(ex, 200, JSON.createObjectNode().put("status", "ok"));
                    }
                    case "/v1/models" -> {
                        authorize(ex);
                        requireMethod(ex, "GET");
                        sendJson(ex, 200, models());
                    }
                    case "/metrics" -> {
                        authorize(ex);
                        requireMethod(ex, "GET");
                        byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
                        ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                        ex.sendResponseHeaders(200, body.length);
                        ex.getResponseBody().write(body);
                    }
                    case "/v1/completions" -> {
                        authorize(ex);
                        requireMethod(ex, "POST");
                        complete(ex);
                    }
                    default -> throw new ApiError(404, "not_found", "no such endpoint: " + abbreviate(path));
                }
            } catch (ApiError e) {
                countRequest("-", e.status);
                trySendError(ex, e.status, e.type, e.getMessage());
            } catch (IOException e) {
                // The client went away; nothing to answer.
                LOG.log(System.Logger.Level.DEBUG, "client I/O on " + path + ": " + e.getMessage());
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "request " + path + " failed", e);
                countRequest("-", 500);
                trySendError(ex, 500, "server_error", "internal error: " + e.getClass().getSimpleName());
            }
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private ObjectNode models() {
        ObjectNode root = JSON.createObjectNode().put("object", "list");
        ArrayNode data = root.putArray("data");
        for (String name : model.modelNames()) {
            data.addObject().put("id", name).put("object", "model").put("owned_by", "pet")
                    .put("root", model.baseName()).put("parent", name.equals(model.baseName()) ? null
                            : model.baseName());
        }
        return root;
    }

    private void complete(HttpExchange ex) throws IOException {
        long start = System.nanoTime();
        JsonNode body = readJson(ex);
        CompletionRequest req = CompletionRequest.parse(body, options.maxTokens(), seeds.incrementAndGet());
        OrtAdapter adapter = null;
        if (!req.model().equals(model.baseName())) {
            adapter = model.adapters().get(req.model());
            if (adapter == null) {
                throw new ApiError(404, "model_not_found", "model '" + abbreviate(req.model()) + "' is not served; "
                        + "known: " + model.modelNames());
            }
        }
        String tag = req.model();
        long deadline = start + options.requestTimeout().toNanos();
        boolean acquired;
        try {
            acquired = slots.tryAcquire(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiError(503, "unavailable", "the server is shutting down");
        }
        if (!acquired) {
            throw new ApiError(503, "overloaded", "no generation slot became free within the request timeout");
        }
        String id = "cmpl-" + UUID.randomUUID();
        long created = System.currentTimeMillis() / 1000;
        StreamWriter stream = req.stream() ? new StreamWriter(ex, id, created, req.model()) : null;
        List<Completion> done;
        try {
            done = model.generator().complete(req.prompts(), req.generation(), req.stop(), adapter,
                    TextGenerator.Overflow.REFUSE, w -> { }, new TextSink() {
                        @Override
                        public boolean accept(int row, String delta) {
                            if (System.nanoTime() > deadline) {
                                throw new ApiError(504, "timeout", "the completion took longer than "
                                        + options.requestTimeout().toSeconds() + " s");
                            }
                            return stream == null || stream.delta(row, delta);
                        }
                    });
        } catch (PetException | EngineException e) {
            if (stream != null && stream.started) {
                stream.error(400, e.getMessage());
                countRequest(tag, 400);
                return;
            }
            throw ApiError.badRequest(e.getMessage());
        } catch (ApiError e) {
            if (stream != null && stream.started) {
                stream.error(e.status, e.getMessage());
                countRequest(tag, e.status);
                return;
            }
            throw e;
        } finally {
            slots.release();
        }
        int promptTokens = 0;
        int completionTokens = 0;
        for (Completion c : done) {
            promptTokens += c.promptTokens();
            completionTokens += c.completionTokens();
        }
        Counter.builder("pet_serve_tokens").tag("adapter", tag).tag("kind", "prompt").register(registry)
                .increment(promptTokens);
        Counter.builder("pet_serve_tokens").tag("adapter", tag).tag("kind", "completion").register(registry)
                .increment(completionTokens);
        if (stream != null) {
            stream.finish(done);
        } else {
            ObjectNode root = JSON.createObjectNode().put("id", id).put("object", "text_completion")
                    .put("created", created).put("model", req.model());
            ArrayNode choices = root.putArray("choices");
            for (int i = 0; i < done.size(); i++) {
                Completion c = done.get(i);
                choices.addObject().put("text", c.text()).put("index", i).putNull("logprobs")
                        .put("finish_reason", c.finishReason());
            }
            root.putObject("usage").put("prompt_tokens", promptTokens).put("completion_tokens", completionTokens)
                    .put("total_tokens", promptTokens + completionTokens);
            sendJson(ex, 200, root);
        }
        countRequest(tag, 200);
        Timer.builder("pet_serve_request_latency").tag("adapter", tag).publishPercentiles(0.5, 0.99)
                .register(registry).record(Duration.ofNanos(System.nanoTime() - start));
    }

    /** Server-sent events: one {@code data:} chunk per piece of text, a last chunk per choice, then [DONE]. */
    private final class StreamWriter {
        private final HttpExchange ex;
        private final String id;
        private final long created;
        private final String modelName;
        private OutputStream out;
        boolean started;

        StreamWriter(HttpExchange ex, String id, long created, String modelName) {
            this.ex = ex;
            this.id = id;
            this.created = created;
            this.modelName = modelName;
        }

        private ObjectNode chunk(int index, String text, String finish) {
            ObjectNode root = JSON.createObjectNode().put("id", id).put("object", "text_completion")
                    .put("created", created).put("model", modelName);
            ObjectNode c = root.putArray("choices").addObject().put("text", text).put("index", index);
            c.putNull("logprobs");
            if (finish == null) {
                c.putNull("finish_reason");
            } else {
                c.put("finish_reason", finish);
            }
            return root;
        }

        private void start() throws IOException {
            if (!started) {
                ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
                ex.getResponseHeaders().set("Cache-Control", "no-cache");
                ex.sendResponseHeaders(200, 0);
                out = ex.getResponseBody();
                started = true;
            }
        }

        private void event(JsonNode data) throws IOException {
            out.write(("data: " + JSON.writeValueAsString(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        /** False when the client is gone (generation of that row stops). */
        boolean delta(int row, String text) {
            try {
                start();
                event(chunk(row, text, null));
                return true;
            } catch (IOException e) {
                return false;
            }
        }

        void finish(List<Completion> done) throws IOException {
            start();
            for (int i = 0; i < done.size(); i++) {
                event(chunk(i, "", done.get(i).finishReason()));
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        void error(int status, String message) {
            try {
                ObjectNode e = JSON.createObjectNode();
                e.putObject("error").put("message", message).put("type", status == 504 ? "timeout"
                        : "invalid_request_error").put("code", status);
                event(e);
            } catch (IOException ignored) {
                // The client is gone.
            }
        }
    }

    private JsonNode readJson(HttpExchange ex) throws IOException {
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        if (length != null) {
            long n;
            try {
                n = Long.parseLong(length.trim());
            } catch (NumberFormatException e) {
                throw ApiError.badRequest("Content-Length is not a number");
            }
            if (n > options.maxBodyBytes()) {
                drain(ex, n);
                throw new ApiError(413, "request_too_large", "the body has " + n + " bytes; at most "
                        + options.maxBodyBytes());
            }
        }
        byte[] bytes;
        try (InputStream in = ex.getRequestBody()) {
            bytes = in.readNBytes(options.maxBodyBytes() + 1);
        }
        if (bytes.length > options.maxBodyBytes()) {
            drain(ex, Long.MAX_VALUE);
            throw new ApiError(413, "request_too_large", "the body is larger than " + options.maxBodyBytes()
                    + " bytes");
        }
        try {
            return JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw ApiError.badRequest("the body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    /** Most bytes of a refused body read and discarded, so that the client reads the 413 instead of a reset. */
    private static final long DRAIN_LIMIT = 32L << 20;

    /**
     * Reads and drops a refused body of up to {@link #DRAIN_LIMIT} bytes: closing a connection with unread input
     * makes TCP reset it, and the client would lose the JSON error. Larger bodies are cut off (the read timeout
     * bounds the time either way).
     */
    private static void drain(HttpExchange ex, long declared) {
        if (declared > DRAIN_LIMIT) {
            return;
        }
        try (InputStream in = ex.getRequestBody()) {
            byte[] buf = new byte[64 << 10];
            long left = DRAIN_LIMIT;
            int n;
            while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
                left -= n;
            }
        } catch (IOException e) {
            // The client went away.
        }
    }

    private void authorize(HttpExchange ex) {
        if (apiKey == null) {
            return;
        }
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        byte[] given = auth != null && auth.startsWith("Bearer ")
                ? auth.substring(7).trim().getBytes(StandardCharsets.UTF_8) : new byte[0];
        // MessageDigest.isEqual takes time independent of where the bytes differ.
        if (!MessageDigest.isEqual(given, apiKey)) {
            ex.getResponseHeaders().set("WWW-Authenticate", "Bearer");
            throw new ApiError(401, "unauthorized", auth == null ? "missing Authorization: Bearer <key>"
                    : "invalid API key");
        }
    }

    private static void requireMethod(HttpExchange ex, String method) {
        if (!method.equals(ex.getRequestMethod())) {
            ex.getResponseHeaders().set("Allow", method);
            throw new ApiError(405, "method_not_allowed", ex.getRequestMethod() + " is not allowed here; use "
                    + method);
        }
    }

    private void countRequest(String adapter, int status) {
        Counter.builder("pet_serve_requests").tag("adapter", adapter).tag("status", Integer.toString(status))
                .register(registry).increment();
    }

    private static void sendJson(HttpExchange ex, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
    }

    private static void trySendError(HttpExchange ex, int status, String type, String message) {
        try {
            ObjectNode root = JSON.createObjectNode();
            root.putObject("error").put("message", message).put("type", type).put("code", status);
            sendJson(ex, status, root);
        } catch (IOException | RuntimeException ignored) {
            // Headers already sent or the client is gone.
        }
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    /**
     * Answers new requests 503, lets running ones finish within the shutdown grace, stops the server (no new
     * connections), then frees the model (only when nothing runs any more: ONNX Runtime must not be closed under a
     * running session).
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true; // new requests are answered 503 from here on
        long deadline = System.nanoTime() + options.shutdownGrace().toNanos();
        try {
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        boolean idle = inFlight.get() == 0;
        server.stop(0);
        executor.shutdownNow();
        if (idle) {
            model.close();
        } else {
            LOG.log(System.Logger.Level.WARNING, "completions still running after the shutdown grace; leaving the "
                    + "model to the process exit");
        }
        registry.close();
    }
}
