package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Gradient rules by ONNX op type (default domain). {@link #standard()} holds the rules PET Runtime ships, grouped
 * in one class per op family; callers may add rules for further ops to a copy.
 */
public final class GradientRegistry {
    private final Map<String, GradientRule> rules = new LinkedHashMap<>();

    private GradientRegistry() {
    }

    /** A fresh registry with every built-in rule. */
    public static GradientRegistry standard() {
        GradientRegistry r = new GradientRegistry();
        ElementwiseGradients.register(r);
        LinearGradients.register(r);
        NormalizationGradients.register(r);
        ReductionGradients.register(r);
        ShapeGradients.register(r);
        IndexGradients.register(r);
        return r;
    }

    /** Adds a rule; fails if the op already has one. */
    public GradientRegistry register(String opType, GradientRule rule) {
        Objects.requireNonNull(opType, "opType");
        Objects.requireNonNull(rule, "rule");
        if (rules.putIfAbsent(opType, rule) != null) {
            throw new OnnxException("a gradient rule for " + opType + " is already registered");
        }
        return this;
    }

    /** The rule for an op type, or null. */
    public GradientRule rule(String opType) {
        return rules.get(opType);
    }

    public Set<String> opTypes() {
        return Collections.unmodifiableSet(rules.keySet());
    }
}
