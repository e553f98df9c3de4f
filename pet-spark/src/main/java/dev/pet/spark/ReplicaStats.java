package dev.pet.spark;

import java.io.Serializable;

/**
 * What one barrier task reports to the driver.
 *
 * @param rank           the task's rank (its partition)
 * @param address        the executor's host:port, as Spark's barrier context gives it
 * @param steps          optimizer steps it took part in
 * @param stepNanos      time spent in those steps, compute and gradient exchange
 * @param exchangedBytes gradient bytes it sent
 * @param finalStep      rank 0: the step the run ended at; -1 on other ranks
 * @param finalLoss      rank 0: the loss of the last step; NaN on other ranks
 * @param stopReason     rank 0: how the run ended; null on other ranks
 * @param metricsUrl     rank 0 with {@code callbacks.prometheus_port} set: where its Prometheus endpoint served the
 *                       run's metrics while it trained; null otherwise
 */
public record ReplicaStats(int rank, String address, long steps, long stepNanos, long exchangedBytes, long finalStep,
        double finalLoss, String stopReason, String metricsUrl) implements Serializable {
    /** Mean time per optimizer step on this replica, in milliseconds. */
    public double meanStepMillis() {
        return steps == 0 ? Double.NaN : stepNanos / 1e6 / steps;
    }
}
