package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * Settings of an in-graph optimizer, selected by {@link #name()}: {@code AdamW} (torch.optim.AdamW),
 * {@code AdamWeightDecay} (MindSpore, no bias correction) or {@code SGD} (torch.optim.SGD, dampening 0).
 *
 * @param name              optimizer name, case-insensitive
 * @param beta1             first-moment decay (Adam)
 * @param beta2             second-moment decay (Adam)
 * @param eps               denominator epsilon (Adam)
 * @param weightDecay       decoupled (Adam) or L2 (SGD) weight decay; 0 for none
 * @param noDecay           tensors (by name) exempt from weight decay, e.g. biases and norms
 * @param momentum          SGD momentum; 0 for none
 * @param nesterov          SGD Nesterov momentum
 * @param maxGradNorm       global-norm gradient clipping threshold; 0 turns clipping off
 * @param accumulationSteps micro-batches whose gradients are averaged before one update; 1 for none
 */
public record OptimizerOptions(String name, double beta1, double beta2, double eps, double weightDecay,
        Predicate<String> noDecay, double momentum, boolean nesterov, double maxGradNorm, int accumulationSteps) {
    /** Exempts biases and LayerNorm/normalisation parameters (names containing "bias", "ln_" or "norm"). */
    public static final Predicate<String> BIASES_AND_NORMS = n -> {
        String s = n.toLowerCase(Locale.ROOT);
        return s.endsWith("bias") || s.contains("ln_") || s.contains("norm");
    };
    /** Applies weight decay to every tensor. */
    public static final Predicate<String> DECAY_ALL = n -> false;

    public OptimizerOptions {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(noDecay, "noDecay");
        Optimizers.canonicalName(name);
        check(beta1 >= 0 && beta1 < 1, "beta1", beta1, "in [0, 1)");
        check(beta2 >= 0 && beta2 < 1, "beta2", beta2, "in [0, 1)");
        check(eps >= 0, "eps", eps, ">= 0");
        check(weightDecay >= 0, "weight_decay", weightDecay, ">= 0");
        check(momentum >= 0, "momentum", momentum, ">= 0");
        check(maxGradNorm >= 0, "max_grad_norm", maxGradNorm, ">= 0 (0 = off)");
        check(accumulationSteps >= 1, "accumulation_steps", accumulationSteps, ">= 1");
        if (nesterov && momentum == 0) {
            throw new OnnxException("optimizer option nesterov needs momentum > 0");
        }
    }

    private static void check(boolean ok, String key, double value, String expected) {
        if (!ok) {
            throw new OnnxException("optimizer option " + key + " must be " + expected + ", found " + value);
        }
    }

    /** torch.optim.AdamW defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on every tensor. */
    public static OptimizerOptions adamW() {
        return new OptimizerOptions("AdamW", 0.9, 0.999, 1e-8, 0.01, DECAY_ALL, 0, false, 0, 1);
    }

    /** MindSpore AdamWeightDecay defaults: betas (0.9, 0.999), eps 1e-6, weight decay 0. */
    public static OptimizerOptions adamWeightDecay() {
        return new OptimizerOptions("AdamWeightDecay", 0.9, 0.999, 1e-6, 0, DECAY_ALL, 0, false, 0, 1);
    }

    /** Plain SGD. */
    public static OptimizerOptions sgd() {
        return new OptimizerOptions("SGD", 0.9, 0.999, 1e-8, 0, DECAY_ALL, 0, false, 0, 1);
    }

    /** Defaults of the named optimizer. */
    public static OptimizerOptions of(String name) {
        return switch (Optimizers.canonicalName(name)) {
            case "AdamW" -> adamW();
            case "AdamWeightDecay" -> adamWeightDecay();
            default -> sgd();
        };
    }

    public OptimizerOptions withBetas(double b1, double b2) {
        return new OptimizerOptions(name, b1, b2, eps, weightDecay, noDecay, momentum, nesterov, maxGradNorm,
                accumulationSteps);
    }

    public OptimizerOptions withEps(double e) {
        return new OptimizerOptions(name, beta1, beta2, e, weightDecay, noDecay, momentum, nesterov, maxGradNorm,
                accumulationSteps);
    }

    public OptimizerOptions withWeightDecay(double wd, Predicate<String> exempt) {
        return new OptimizerOptions(name, beta1, beta2, eps, wd, exempt, momentum, nesterov, maxGradNorm,
                accumulationSteps);
    }

    public OptimizerOptions withMomentum(double m, boolean nest) {
        return new OptimizerOptions(name, beta1, beta2, eps, weightDecay, noDecay, m, nest, maxGradNorm,
                accumulationSteps);
    }

    public OptimizerOptions withMaxGradNorm(double max) {
        return new OptimizerOptions(name, beta1, beta2, eps, weightDecay, noDecay, momentum, nesterov, max,
                accumulationSteps);
    }

    public OptimizerOptions withAccumulationSteps(int steps) {
        return new OptimizerOptions(name, beta1, beta2, eps, weightDecay, noDecay, momentum, nesterov, maxGradNorm,
                steps);
    }

    /** Whether weight decay applies to the named tensor. */
    public boolean decays(String tensorName) {
        return weightDecay > 0 && !noDecay.test(tensorName);
    }
}
