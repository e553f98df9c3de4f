package dev.pet.runtime.metrics;

/** Mean loss over the eval dataset after {@code step} optimizer steps, and how many target tokens it covered. */
public record EvalMetrics(long step, double loss, long tokens) {
    public double perplexity() {
        return Math.exp(loss);
    }
}
