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
 * @param segments    further segments, each given by its input and output (the row chunks of a language-model head
 *                    and loss), recomputed like the boundaries' segments; a segment may name a value whose gradient
 *                    its recomputation waits for
 */
public record Recompute(boolean activations, List<String> boundaries, List<Segment> segments) {
    /**
     * Composed activations only. Not the default: at GPT-2 small it saved 6% of peak RSS but cost 20-30% of step
     * time (docs/BENCHMARKS.md), where per-block recomputation saves far more for its time.
     */
    public static final Recompute ACTIVATIONS = new Recompute(true, List.of());
    /** Nothing recomputed, every value a rule reads stays alive from the forward pass: the default. */
    public static final Recompute NONE = new Recompute(false, List.of());

    /**
     * A segment recomputed from {@code input} up to {@code output} (every node downstream of the one and upstream
     * of the other). With {@code after} non-null the recomputation also waits for the gradient of {@code after}:
     * ONNX Runtime runs a node as soon as its inputs exist, so without it the recomputations of independent
     * segments (row chunks) could all run first and be alive together.
     */
    public record Segment(String input, String output, String after) {
        public Segment {
            Objects.requireNonNull(input, "input");
            Objects.requireNonNull(output, "output");
            if (input.equals(output)) {
                throw new IllegalArgumentException("recompute segment from '" + input + "' to itself");
            }
        }
    }

    public Recompute {
        boundaries = List.copyOf(Objects.requireNonNull(boundaries, "boundaries"));
        segments = List.copyOf(Objects.requireNonNull(segments, "segments"));
        if (boundaries.size() == 1) {
            throw new IllegalArgumentException("recompute boundaries need at least two values (a segment's input"
                    + " and output), got " + boundaries);
        }
    }

    /** Without explicit {@link Segment}s. */
    public Recompute(boolean activations, List<String> boundaries) {
        this(activations, boundaries, List.of());
    }

    /** Composed activations plus every segment between consecutive {@code boundaries}. */
    public static Recompute segments(List<String> boundaries) {
        return new Recompute(true, boundaries);
    }

    /** This plan with {@code more} segments added. */
    public Recompute withSegments(List<Segment> more) {
        List<Segment> all = new java.util.ArrayList<>(segments);
        all.addAll(more);
        return new Recompute(activations, boundaries, all);
    }

    /** Whether anything besides composed activations is recomputed. */
    public boolean recomputesSegments() {
        return !boundaries.isEmpty() || !segments.isEmpty();
    }
}
