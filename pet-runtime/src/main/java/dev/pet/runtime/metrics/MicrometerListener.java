package dev.pet.runtime.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Publishes a run to a {@link MeterRegistry} the caller owns: {@code pet.train.loss}, {@code pet.train.learning.rate},
 * {@code pet.train.grad.norm}, {@code pet.eval.loss}, {@code pet.eval.perplexity} gauges, the {@code pet.train.step}
 * timer, in a data-parallel run the {@code pet.train.replica.compute} timer per {@code rank}, the {@code pet.train.tokens} counter, and {@code pet.memory.heap.used} / {@code pet.memory.direct.used}
 * gauges, all tagged {@code model} and {@code pet}.
 */
public final class MicrometerListener implements TrainingListener {
    private final MeterRegistry registry;
    private final DoubleHolder loss = new DoubleHolder();
    private final DoubleHolder learningRate = new DoubleHolder();
    private final DoubleHolder gradNorm = new DoubleHolder();
    private final DoubleHolder evalLoss = new DoubleHolder();
    private final DoubleHolder evalPerplexity = new DoubleHolder();
    private Timer stepTimer;
    private Counter tokens;
    private Tags tags;
    private final java.util.List<Timer> replicaTimers = new java.util.ArrayList<>();

    public MicrometerListener(MeterRegistry registry) {
        this.registry = Objects.requireNonNull(registry, "registry");
    }

    /** A double a gauge reads; gauges keep a strong reference so it lives as long as the meter. */
    private static final class DoubleHolder {
        private final AtomicLong bits = new AtomicLong(Double.doubleToLongBits(Double.NaN));

        void set(double value) {
            bits.set(Double.doubleToLongBits(value));
        }

        double get() {
            return Double.longBitsToDouble(bits.get());
        }
    }

    @Override
    public void onTrainingBegin(RunInfo run) {
        Tags tags = Tags.of("model", run.model(), "pet", run.pet());
        this.tags = tags;
        gauge("pet.train.loss", "training loss of the last step", loss, tags);
        gauge("pet.train.learning.rate", "learning rate of the last step", learningRate, tags);
        gauge("pet.train.grad.norm", "global gradient norm of the last step, before clipping", gradNorm, tags);
        gauge("pet.eval.loss", "mean loss on the eval dataset", evalLoss, tags);
        gauge("pet.eval.perplexity", "exp(eval loss)", evalPerplexity, tags);
        stepTimer = Timer.builder("pet.train.step").description("wall time of one optimizer step").tags(tags)
                .register(registry);
        tokens = Counter.builder("pet.train.tokens").description("target tokens trained on").baseUnit("tokens")
                .tags(tags).register(registry);
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        Gauge.builder("pet.memory.heap.used", memory, m -> m.getHeapMemoryUsage().getUsed()).baseUnit("bytes")
                .description("JVM heap in use").tags(tags).register(registry);
        Gauge.builder("pet.memory.direct.used", this, l -> directBytes()).baseUnit("bytes")
                .description("direct and mapped buffer memory in use").tags(tags).strongReference(true).register(registry);
    }

    private static double directBytes() {
        double total = 0;
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            total += Math.max(0, pool.getMemoryUsed());
        }
        return total;
    }

    private void gauge(String name, String description, DoubleHolder holder, Tags tags) {
        Gauge.builder(name, holder, DoubleHolder::get).description(description).tags(tags).strongReference(true)
                .register(registry);
    }

    @Override
    public void onStep(StepMetrics step) {
        if (stepTimer == null) {
            throw new IllegalStateException("onStep before onTrainingBegin");
        }
        loss.set(step.loss());
        learningRate.set(step.learningRate());
        gradNorm.set(step.gradNorm());
        stepTimer.record(step.stepNanos(), TimeUnit.NANOSECONDS);
        tokens.increment(step.tokens());
        List<Long> replicas = step.replicaComputeNanos();
        for (int rank = replicaTimers.size(); rank < replicas.size(); rank++) {
            // One timer per rank: the tag's values are bounded by runner_config.data_parallel.
            replicaTimers.add(Timer.builder("pet.train.replica.compute").description("time one data-parallel "
                    + "replica spent computing its gradients in a step, without the exchange")
                    .tags(tags.and("rank", Integer.toString(rank))).register(registry));
        }
        for (int rank = 0; rank < replicas.size(); rank++) {
            replicaTimers.get(rank).record(replicas.get(rank), TimeUnit.NANOSECONDS);
        }
    }

    @Override
    public void onEvaluation(EvalMetrics eval) {
        evalLoss.set(eval.loss());
        evalPerplexity.set(eval.perplexity());
    }
}
