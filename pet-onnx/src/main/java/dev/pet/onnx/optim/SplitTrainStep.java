package dev.pet.onnx.optim;

import dev.pet.onnx.ir.Model;
import java.util.List;
import java.util.Objects;

/**
 * A train step split for data parallelism ({@link TrainStepBuilder#buildSplit}): each replica runs
 * {@code gradients} on its share of a micro-batch, the replicas average the gradients, and each runs {@code apply}
 * on the average, so every replica makes the same update a single process would make on the whole micro-batch.
 *
 * @param gradients     forward, loss and backward pass: inputs are {@code feeds} and the trainables (plain inputs,
 *                      fed the apply graph's current values); outputs the loss outputs and
 *                      {@link TrainStepBuilder#gradient(String)} for every trainable
 * @param feeds         the gradients graph's batch inputs ({@code tokens}, {@code loss_mask} and, with dropout,
 *                      {@link TrainStepBuilder#DROPOUT_SEED})
 * @param apply         the stateful update: its feeds are the gradients, {@link TrainStepBuilder#LR},
 *                      {@link TrainStepBuilder#STEP} and, with accumulation, {@link TrainStepBuilder#APPLY}; its state
 *                      is named as the fused step's (trainables, optimizer moments, accumulators)
 */
public record SplitTrainStep(Model gradients, List<String> feeds, TrainStepModel apply) {
    public SplitTrainStep {
        Objects.requireNonNull(gradients, "gradients");
        feeds = List.copyOf(feeds);
        Objects.requireNonNull(apply, "apply");
    }
}
