package dev.pet.runtime.config;

import java.util.Objects;

/**
 * {@code lr_schedule}: peak learning rate, warmup (steps, or a ratio of the total when {@code warmupSteps} is 0),
 * the rate decayed to ({@code lrEnd}), the polynomial {@code power}, the cosine {@code numCycles}, and
 * {@code totalSteps} (-1: derived from the runner config and the data).
 */
public record LrScheduleConfig(Type type, double learningRate, long warmupSteps, double warmupRatio, double lrEnd,
                               double power, double numCycles, long totalSteps) {
    /** Schedule shapes, with Hugging Face {@code get_*_schedule_with_warmup} semantics. */
    public enum Type {
        CONSTANT, LINEAR, COSINE, POLYNOMIAL;

        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public LrScheduleConfig {
        Objects.requireNonNull(type, "type");
        if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
            throw new ConfigException("lr_schedule.learning_rate", "must be > 0, found " + learningRate);
        }
        if (warmupSteps < 0) {
            throw new ConfigException("lr_schedule.warmup_steps", "must be >= 0, found " + warmupSteps);
        }
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
            throw new ConfigException("lr_schedule.warmup_ratio", "must be in [0, 1], found " + warmupRatio);
        }
        if (warmupSteps > 0 && warmupRatio > 0) {
            throw new ConfigException("lr_schedule.warmup_ratio", "give warmup_steps or warmup_ratio, not both");
        }
        if (!(lrEnd >= 0) || lrEnd > learningRate) {
            throw new ConfigException("lr_schedule.lr_end", "must be in [0, learning_rate=" + learningRate + "], found " + lrEnd);
        }
        if (!(power > 0)) {
            throw new ConfigException("lr_schedule.power", "must be > 0, found " + power);
        }
        if (!(numCycles > 0)) {
            throw new ConfigException("lr_schedule.num_cycles", "must be > 0, found " + numCycles);
        }
        if (totalSteps == 0 || totalSteps < -1) {
            throw new ConfigException("lr_schedule.total_steps", "must be -1 (derived) or > 0, found " + totalSteps);
        }
    }

    public static LrScheduleConfig defaults() {
        return new LrScheduleConfig(Type.LINEAR, 5e-5, 0, 0, 0, 1.0, 0.5, -1);
    }
}
