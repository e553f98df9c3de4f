package dev.pet.onnx.optim;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Value;
import java.util.List;
import java.util.Objects;

/**
 * An optimizer expressed as ONNX ops: the update of one parameter from its gradient, its state tensors (same shape
 * as the parameter, zero-initialised), the learning rate and the step number.
 */
public interface Optimizer {
    /** Canonical name ({@code AdamW}, {@code AdamWeightDecay}, {@code SGD}). */
    String name();

    /** Names of the per-parameter state slots, e.g. {@code m} and {@code v}; empty for stateless updates. */
    List<String> stateSlots();

    /**
     * Builds one parameter's update.
     *
     * @param b     builder on the train-step graph
     * @param param current parameter value
     * @param grad  its (clipped, averaged) gradient, same type and shape
     * @param state current state values, in {@link #stateSlots()} order
     * @param lr    learning rate, a scalar of the parameter's element type
     * @param step  the number of this update (1 for the first), a scalar of the parameter's element type
     * @param decay whether weight decay applies to this parameter
     */
    Update update(GraphBuilder b, Value param, Value grad, List<Value> state, Value lr, Value step, boolean decay);

    /**
     * New values of a parameter and of its state slots.
     *
     * @param param updated parameter
     * @param state updated state, in slot order
     */
    record Update(Value param, List<Value> state) {
        public Update {
            Objects.requireNonNull(param, "param");
            state = List.copyOf(state);
        }
    }
}
