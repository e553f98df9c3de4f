package dev.pet.onnx.build;

import dev.pet.onnx.OnnxException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Map.Entry;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Shape rules by ONNX op type (default domain) and opset, like ONNX's reference evaluator ({@code Unsqueeze_1},
 * {@code Unsqueeze_13}): a rule registered since opset N serves every opset from N up to the next registration of
 * the same op. {@link #standard()} holds the rules PET Runtime ships, one class per op family, the same families as
 * the gradient rules ({@code dev.pet.onnx.autodiff.GradientRegistry}).
 */
public final class ShapeRegistry {
    private final Map<String, TreeMap<Integer, ShapeRule>> rules = new LinkedHashMap<>();

    private ShapeRegistry() {
    }

    /** A fresh registry with every built-in rule. */
    public static ShapeRegistry standard() {
        ShapeRegistry r = new ShapeRegistry();
        ElementwiseShapes.register(r);
        LinearShapes.register(r);
        NormalizationShapes.register(r);
        ReductionShapes.register(r);
        MovementShapes.register(r);
        IndexShapes.register(r);
        GeneratorShapes.register(r);
        return r;
    }

    /** Adds a rule valid from opset 1; fails if the op already has one there. */
    public ShapeRegistry register(String opType, ShapeRule rule) {
        return register(opType, 1, rule);
    }

    /** Adds the rule of an op's form introduced in opset {@code since}; fails on a duplicate. */
    public ShapeRegistry register(String opType, int since, ShapeRule rule) {
        Objects.requireNonNull(opType, "opType");
        Objects.requireNonNull(rule, "rule");
        if (since < 1) {
            throw new IllegalArgumentException("opset must be >= 1, found " + since);
        }
        if (rules.computeIfAbsent(opType, k -> new TreeMap<>()).putIfAbsent(since, rule) != null) {
            throw new OnnxException("a shape rule for " + opType + " since opset " + since
                    + " is already registered");
        }
        return this;
    }

    /** The rule for an op type at an opset, or null when there is none. */
    public ShapeRule rule(String opType, int opset) {
        TreeMap<Integer, ShapeRule> versions = rules.get(opType);
        Entry<Integer, ShapeRule> e = versions == null ? null : versions.floorEntry(opset);
        return e == null ? null : e.getValue();
    }

    public Set<String> opTypes() {
        return Collections.unmodifiableSet(rules.keySet());
    }
}
