package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * An in-graph optimizer and its options.
 *
 * @param kind          the update rule
 * @param beta1         Adam first-moment decay, or SGD momentum
 * @param beta2         Adam second-moment decay
 * @param eps           Adam denominator epsilon
 * @param weightDecay   decoupled (AdamW), added to the update (AdamWeightDecay) or L2 (SGD)
 * @param noDecay       tensor names excluded from weight decay (biases, norms)
 * @param maxGradNorm   global-norm clipping threshold; 0 disables clipping
 * @param nesterov      SGD Nesterov momentum
 * @param accumulation  micro-batches per optimizer step (gradient accumulation)
 */
public record OptimizerSpec(Kind kind, double beta1, double beta2, double eps, double weightDecay,
        Predicate<String> noDecay, double maxGradNorm, boolean nesterov, int accumulation) {
    /** The update rules. */
    public enum Kind {
        /** torch.optim.AdamW: bias-corrected moments, decoupled weight decay lr·wd·p. */
        ADAMW,
        /** MindSpore AdamWeightDecay: no bias correction, decay added to the update. */
        ADAM_WEIGHT_DECAY,
        /** torch.optim.SGD with optional momentum (dampening 0) and Nesterov. */
        SGD;

        /** Parses a config name: {@code AdamW}, {@code AdamWeightDecay}, {@code SGD} (case-insensitive). */
        public static Kind parse(String name) {
            return switch (name.toLowerCase(Locale.ROOT).replace("_", "")) {
                case "adamw" -> ADAMW;
                case "adamweightdecay" -> ADAM_WEIGHT_DECAY;
                case "sgd" -> SGD;
                default -> throw new OnnxException("unknown optimizer '" + name
                        + "'; expected AdamW, AdamWeightDecay or SGD");
            };
        }
    }

    public OptimizerSpec {
        Objects.requireNonNull(kind, "kind");
        noDecay = noDecay == null ? n -> false : noDecay;
        if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) {
            throw new OnnxException("betas must be in [0, 1), found " + beta1 + ", " + beta2);
        }
        if (eps < 0 || weightDecay < 0 || maxGradNorm < 0) {
            throw new OnnxException("eps, weight_decay and max_grad_norm must be >= 0");
        }
        if (accumulation < 1) {
            throw new OnnxException("gradient accumulation steps must be >= 1, found " + accumulation);
        }
    }

    /** AdamW with torch's defaults. */
    public static OptimizerSpec adamW() {
        return new OptimizerSpec(Kind.ADAMW, 0.9, 0.999, 1e-8, 0.01, null, 0, false, 1);
    }

    /** Excludes names ending in {@code bias} or containing {@code ln_}/{@code norm} from decay. */
    public static Predicate<String> biasesAndNorms() {
        return n -> n.endsWith("bias") || n.contains("ln_") || n.contains("norm");
    }

    public OptimizerSpec withWeightDecay(double wd, Predicate<String> excluded) {
        return new OptimizerSpec(kind, beta1, beta2, eps, wd, excluded, maxGradNorm, nesterov, accumulation);
    }

    public OptimizerSpec withMaxGradNorm(double norm) {
        return new OptimizerSpec(kind, beta1, beta2, eps, weightDecay, noDecay, norm, nesterov, accumulation);
    }

    public OptimizerSpec withAccumulation(int steps) {
        return new OptimizerSpec(kind, beta1, beta2, eps, weightDecay, noDecay, maxGradNorm, nesterov, steps);
    }
}
