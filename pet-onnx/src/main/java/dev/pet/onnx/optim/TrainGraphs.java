package dev.pet.onnx.optim;

import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The graphs of one training setup and the names that connect them to an engine.
 *
 * <p>Without gradient accumulation, {@link #step()} does everything: inputs {@code batchInputs}, every trainable
 * (its own name), every state tensor ({@code stateNames}), {@link TrainStepGraph#STEP} (int64 scalar, 1 for the
 * first update) and {@link TrainStepGraph#LR} (float scalar); outputs {@link TrainStepGraph#LOSS}, the updated
 * trainables and state ({@link #updated}) and {@link TrainStepGraph#GRAD_NORM} (global L2 norm before clipping).
 * With accumulation, {@link #accumulate()} (batch, trainables, accumulators → loss, updated accumulators) runs
 * once per micro-batch and {@link #apply()} (trainables, accumulators, state, step, lr → updated trainables and
 * state, gradient norm) once per update, after which the accumulators are reset to zero. {@link #eval()} maps the
 * batch inputs to the loss. Frozen weights stay initializers of every graph.
 *
 * @param step          the fused train step, or null with accumulation
 * @param accumulate    forward + backward adding into accumulators, or null without accumulation
 * @param apply         the optimizer update from accumulated gradients, or null without accumulation
 * @param eval          the loss only
 * @param batchInputs   graph inputs fed per batch
 * @param trainables    trainable tensor names (graph inputs of the same name)
 * @param stateNames    optimizer state input names, per trainable in slot order
 * @param accumulators  gradient accumulator input names, one per trainable (empty without accumulation)
 * @param updated       for each trainable, state and accumulator input: the output holding its new value
 * @param initialValues initial values of the trainables (their former initializers)
 */
public record TrainGraphs(Model step, Model accumulate, Model apply, Model eval, List<String> batchInputs,
        List<String> trainables, List<String> stateNames, List<String> accumulators, Map<String, String> updated,
        Map<String, Tensor> initialValues) {
    public TrainGraphs {
        batchInputs = List.copyOf(batchInputs);
        trainables = List.copyOf(trainables);
        stateNames = List.copyOf(stateNames);
        accumulators = List.copyOf(accumulators);
        updated = Collections.unmodifiableMap(new LinkedHashMap<>(updated));
        initialValues = Collections.unmodifiableMap(new LinkedHashMap<>(initialValues));
    }
}
