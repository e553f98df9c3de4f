package dev.pet.runtime.config;

import java.util.Objects;

/**
 * {@code optimizer}: the update rule. {@code maxGradNorm} 0 disables clipping; {@code momentum} is used by SGD only.
 */
public record OptimizerConfig(Type type, double beta1, double beta2, double eps, double weightDecay,
                              double maxGradNorm, double momentum) {
    /** The optimizers a config may name. */
    public enum Type {
        ADAMW("AdamW"), ADAM_WEIGHT_DECAY("AdamWeightDecay"), ADAM("Adam"), SGD("SGD");

        private final String yamlName;

        Type(String yamlName) {
            this.yamlName = yamlName;
        }

        public String yamlName() {
            return yamlName;
        }
    }

    public OptimizerConfig {
        Objects.requireNonNull(type, "type");
        check("beta1", beta1, beta1 >= 0 && beta1 < 1, "in [0, 1)");
        check("beta2", beta2, beta2 >= 0 && beta2 < 1, "in [0, 1)");
        check("eps", eps, eps > 0, "> 0");
        check("weight_decay", weightDecay, weightDecay >= 0, ">= 0");
        check("max_grad_norm", maxGradNorm, maxGradNorm >= 0, ">= 0 (0 = no clipping)");
        check("momentum", momentum, momentum >= 0 && momentum < 1, "in [0, 1)");
    }

    private static void check(String key, double value, boolean ok, String expected) {
        if (!ok || Double.isNaN(value)) {
            throw new ConfigException("optimizer." + key, "must be " + expected + ", found " + value);
        }
    }

    public static OptimizerConfig defaults() {
        return new OptimizerConfig(Type.ADAMW, 0.9, 0.999, 1e-8, 0.0, 1.0, 0.0);
    }
}
