package dev.pet.onnx.autodiff;

import java.util.List;
import java.util.Objects;

/**
 * What the backward pass recomputes rather than keeps alive from the forward pass. Gradients are the same either
 * way (the recomputation runs the same ops on the same values); what changes is peak memory and time.
 *
 * @param activations recompute composed activation functions (tanh-GELU, SiLU written as elementwise ops) from
 *                    their input, which their rules keep anyway: frees several activation-sized intermediates per
 *                    block for a few elementwise ops
 * @param boundaries  values b₀, b₁, … bₙ (block inputs/outputs, in order): each segment (bᵢ₋₁, bᵢ] is recomputed
 *                    from bᵢ₋₁ when the backward pass reaches it, so of a block only its input stays alive
 *                    (gradient checkpointing per block); empty for none
 */
public record Recompute(boolean activations, List<String> boundaries) {
    /**
     * Composed activations only. Not the default: at GPT-2 small it saved 6% of peak RSS but cost 20-30% of step
     * time (docs/BENCHMARKS.md), where per-block recomputation saves far more for its time.
     */
    public static final Recompute ACTIVATIONS = new Recompute(true, List.of());
    /** Nothing recomputed, every value a rule reads stays alive from the forward pass: the default. */
    public static final Recompute NONE = new Recompute(false, List.of());

    public Recompute {
        boundaries = List.copyOf(Objects.requireNonNull(boundaries, "boundaries"));
        if (boundaries.size() == 1) {
            throw new IllegalArgumentException("recompute boundaries need at least two values (a segment's input"
                    + " and output), got " + boundaries);
        }
    }

    /** Composed activations plus every segment between consecutive {@code boundaries}. */
    public static Recompute segments(List<String> boundaries) {
        return new Recompute(true, boundaries);
    }
}
