package dev.pet.runtime.config;

/**
 * {@code callbacks}: how often to checkpoint, evaluate and log, how many checkpoints to keep, and the Prometheus
 * scrape port (-1: no endpoint, 0: any free port). Step counts of 0 disable that callback.
 */
public record CallbacksConfig(long checkpointSteps, int keepCheckpoints, long evalSteps, long logSteps,
                              int prometheusPort) {
    public CallbacksConfig {
        nonNegative("checkpoint_steps", checkpointSteps);
        nonNegative("eval_steps", evalSteps);
        nonNegative("log_steps", logSteps);
        if (keepCheckpoints < 1) {
            throw new ConfigException("callbacks.keep_checkpoints", "must be >= 1, found " + keepCheckpoints);
        }
        if (prometheusPort < -1 || prometheusPort > 65535) {
            throw new ConfigException("callbacks.prometheus_port", "must be -1 (off), 0 (any) or a port, found " + prometheusPort);
        }
    }

    private static void nonNegative(String key, long value) {
        if (value < 0) {
            throw new ConfigException("callbacks." + key, "must be >= 0 (0 = off), found " + value);
        }
    }

    public static CallbacksConfig defaults() {
        return new CallbacksConfig(500, 3, 500, 10, -1);
    }
}
