package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import dev.pet.onnx.ir.Value;

/**
 * The result of {@link Autodiff}: the gradient value of each trainable tensor, by trainable name in the order
 * given, and how many nodes the backward pass added.
 *
 * @param byName     gradient values by trainable name
 * @param addedNodes number of nodes the backward pass appended
 */
public record Gradients(Map<String, Value> byName, int addedNodes) {
    public Gradients {
        byName = Collections.unmodifiableMap(new LinkedHashMap<>(byName));
    }

    /** The gradient of the named trainable; fails naming it when it was not requested. */
    public Value get(String trainable) {
        Value g = byName.get(trainable);
        if (g == null) {
            throw new OnnxException("no gradient was requested for '" + trainable + "' (requested: "
                    + byName.keySet() + ")");
        }
        return g;
    }

    public Value get(Value trainable) {
        return get(trainable.name());
    }
}
