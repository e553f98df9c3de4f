package dev.pet.runtime.serve;

import java.time.Duration;
import java.util.Objects;

/**
 * How {@code pet serve} listens and what it accepts.
 *
 * @param host            interface to bind ({@code 127.0.0.1} unless the user says otherwise)
 * @param port            TCP port; 0 picks a free one
 * @param apiKey          bearer token every {@code /v1} and {@code /metrics} request must carry, or null for none
 * @param maxTokens       largest {@code max_tokens} a request may ask for
 * @param maxBodyBytes    largest request body
 * @param requestTimeout  longest a completion may run (and wait for a slot) before it is cut off
 * @param readTimeout     longest a client may take to send a request's headers and body (slow clients are dropped)
 * @param maxConcurrent   completions generated at the same time; the rest wait for a slot
 * @param shutdownGrace   how long SIGTERM waits for running completions
 */
public record ServeOptions(String host, int port, String apiKey, int maxTokens, int maxBodyBytes,
        Duration requestTimeout, Duration readTimeout, int maxConcurrent, Duration shutdownGrace) {
    public ServeOptions {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(readTimeout, "readTimeout");
        Objects.requireNonNull(shutdownGrace, "shutdownGrace");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port: expected 0..65535, found " + port);
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("--max-tokens: expected >= 1, found " + maxTokens);
        }
        if (maxBodyBytes < 1024) {
            throw new IllegalArgumentException("--max-body-bytes: expected >= 1024, found " + maxBodyBytes);
        }
        if (maxConcurrent < 1) {
            throw new IllegalArgumentException("--max-concurrent: expected >= 1, found " + maxConcurrent);
        }
        if (apiKey != null && apiKey.isBlank()) {
            throw new IllegalArgumentException("the API key is empty");
        }
    }

    /** Loopback, a free port, no key, 256 tokens, 1 MiB bodies, 60 s per request, 10 s to read a request. */
    public static ServeOptions defaults() {
        return new ServeOptions("127.0.0.1", 0, null, 256, 1 << 20, Duration.ofSeconds(60), Duration.ofSeconds(10),
                2, Duration.ofSeconds(30));
    }

    public ServeOptions withPort(int p) {
        return new ServeOptions(host, p, apiKey, maxTokens, maxBodyBytes, requestTimeout, readTimeout, maxConcurrent,
                shutdownGrace);
    }

    public ServeOptions withApiKey(String key) {
        return new ServeOptions(host, port, key, maxTokens, maxBodyBytes, requestTimeout, readTimeout, maxConcurrent,
                shutdownGrace);
    }

    public ServeOptions withTimeouts(Duration request, Duration read) {
        return new ServeOptions(host, port, apiKey, maxTokens, maxBodyBytes, request, read, maxConcurrent,
                shutdownGrace);
    }
}
