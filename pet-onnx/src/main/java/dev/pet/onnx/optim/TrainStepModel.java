package dev.pet.onnx.optim;

import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A compiled train step: one ONNX model mapping (batch feeds, state) to (loss, gradient norm, next state).
 *
 * @param model        the train-step graph; frozen weights are still constant initializers
 * @param feeds        inputs fed every step: the batch inputs, {@link TrainStepBuilder#LR}, {@link TrainStepBuilder#STEP}
 *                     and, when present, {@link TrainStepBuilder#DROPOUT_SEED} and {@link TrainStepBuilder#APPLY}
 * @param stateBindings state input name to the output holding its next value (trainables first, then optimizer state)
 * @param initialState initial value of every state input (trainables from the model, optimizer state zeros)
 * @param trainables   the trainable tensor names, in order
 */
public record TrainStepModel(Model model, List<String> feeds, Map<String, String> stateBindings,
        Map<String, Tensor> initialState, List<String> trainables) {
    public TrainStepModel {
        Objects.requireNonNull(model, "model");
        feeds = List.copyOf(feeds);
        stateBindings = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(stateBindings));
        initialState = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(initialState));
        trainables = List.copyOf(trainables);
    }
}
