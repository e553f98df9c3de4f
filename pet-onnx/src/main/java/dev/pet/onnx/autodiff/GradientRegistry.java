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
        QuantizedGradients.register(r);
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

    /** Adds a rule for an op of another domain (e.g. ONNX Runtime's {@code com.microsoft}); fails if it has one. */
    public GradientRegistry register(String domain, String opType, GradientRule rule) {
        return register(key(domain, opType), rule);
    }

    /** The rule for an op type of the default domain, or null. */
    public GradientRule rule(String opType) {
        return rules.get(opType);
    }

    /** The rule for an op type of a domain ("" or "ai.onnx" for the default one), or null. */
    public GradientRule rule(String domain, String opType) {
        return rules.get(key(domain, opType));
    }

    private static String key(String domain, String opType) {
        return domain.isEmpty() || domain.equals("ai.onnx") ? opType : domain + ":" + opType;
    }

    public Set<String> opTypes() {
        return Collections.unmodifiableSet(rules.keySet());
    }
}
