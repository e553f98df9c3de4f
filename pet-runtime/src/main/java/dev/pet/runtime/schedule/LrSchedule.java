package dev.pet.runtime.schedule;

import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.LrScheduleConfig;

import java.util.Objects;

/**
 * The learning rate of each optimizer step, with Hugging Face {@code get_*_schedule_with_warmup} semantics: step
 * {@code k} (0-based, the k-th optimizer update) uses {@code learningRate(k)}; during warmup the rate rises linearly
 * from 0 to the peak ({@code k / warmup}); after it, the shape decays from the peak to {@code lrEnd} at
 * {@code totalSteps}:
 * <ul>
 * <li>constant: the peak;</li>
 * <li>linear: {@code lrEnd + (peak - lrEnd) * max(0, (total - k) / (total - warmup))};</li>
 * <li>cosine: {@code lrEnd + (peak - lrEnd) * max(0, 0.5 * (1 + cos(pi * numCycles * 2 * progress)))};</li>
 * <li>polynomial: {@code lrEnd + (peak - lrEnd) * (1 - progress)^power}, and {@code lrEnd} after the end.</li>
 * </ul>
 * with {@code progress = (k - warmup) / (total - warmup)}. With {@code lrEnd = 0} these are exactly HF's linear and
 * cosine schedules; polynomial is HF's {@code get_polynomial_decay_schedule_with_warmup(lr_end, power)}.
 */
public record LrSchedule(LrScheduleConfig.Type type, double peak, long warmupSteps, long totalSteps, double lrEnd,
                         double power, double numCycles) {
    public LrSchedule {
        Objects.requireNonNull(type, "type");
        if (totalSteps < 1) {
            throw new IllegalArgumentException("totalSteps must be >= 1, found " + totalSteps);
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmupSteps must be >= 0, found " + warmupSteps);
        }
    }

    /**
     * The schedule of a config for a run of {@code derivedTotalSteps} optimizer steps (used when the config's
     * {@code total_steps} is -1); {@code warmup_ratio} becomes {@code ceil(ratio * total)} steps as in HF.
     */
    public static LrSchedule of(LrScheduleConfig config, long derivedTotalSteps) {
        Objects.requireNonNull(config, "config");
        long total = config.totalSteps() > 0 ? config.totalSteps() : derivedTotalSteps;
        if (total < 1) {
            throw new ConfigException("lr_schedule.total_steps", "the run has " + total
                    + " optimizer steps; need at least 1 (more data, or set runner_config.max_steps)");
        }
        long warmup = config.warmupSteps() > 0 ? config.warmupSteps() : (long) Math.ceil(config.warmupRatio() * total);
        return new LrSchedule(config.type(), config.learningRate(), warmup, total, config.lrEnd(), config.power(),
                config.numCycles());
    }

    public double learningRate(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, found " + step);
        }
        if (step < warmupSteps) {
            return peak * step / Math.max(1, warmupSteps);
        }
        if (type == LrScheduleConfig.Type.CONSTANT) {
            return peak;
        }
        double span = Math.max(1, totalSteps - warmupSteps);
        double progress = (step - warmupSteps) / span;
        double factor = switch (type) {
            case LINEAR -> Math.max(0.0, (totalSteps - step) / span);
            case COSINE -> Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress)));
            case POLYNOMIAL -> step > totalSteps ? 0.0 : Math.pow(1.0 - progress, power);
            case CONSTANT -> throw new AssertionError();
        };
        return lrEnd + (peak - lrEnd) * factor;
    }
}
