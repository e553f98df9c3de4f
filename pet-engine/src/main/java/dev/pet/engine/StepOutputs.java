package dev.pet.engine;

import dev.pet.onnx.tensor.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The outputs of one step that are not carried state (loss, gradient norm...), copied to the heap.
 *
 * @param values outputs by name
 */
public record StepOutputs(Map<String, Tensor> values) {
    public StepOutputs {
        values = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(values, "values")));
    }

    /** The named output; fails naming the available ones when absent. */
    public Tensor get(String name) {
        Tensor t = values.get(name);
        if (t == null) {
            throw new EngineException("step has no output '" + name + "'; outputs are " + values.keySet());
        }
        return t;
    }

    /** The named output, which must hold exactly one element, as a double. */
    public double scalar(String name) {
        Tensor t = get(name);
        if (t.elementCount() != 1) {
            throw new EngineException("step output '" + name + "' is " + t + ", not a single value");
        }
        return t.toDoubleArray()[0];
    }
}
