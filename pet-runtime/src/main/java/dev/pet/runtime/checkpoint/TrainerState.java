package dev.pet.runtime.checkpoint;

import dev.pet.runtime.data.DataPosition;

import java.util.Map;
import java.util.Objects;

/**
 * What a run needs besides the payload to continue exactly: optimizer steps done, the data position of the next
 * batch, the RNG states (by name, e.g. {@code dropout}), the hash of the config that wrote it, the last loss and
 * the target tokens trained on so far. Saved as {@code trainer_state.json}.
 */
public record TrainerState(long step, DataPosition dataPosition, Map<String, Long> rngState, String configHash,
                           double lastLoss, long tokensSeen) {
    /** Version of the JSON layout. */
    public static final int FORMAT_VERSION = 1;

    public TrainerState {
        Objects.requireNonNull(dataPosition, "dataPosition");
        Objects.requireNonNull(configHash, "configHash");
        rngState = rngState == null ? Map.of() : Map.copyOf(rngState);
        if (step < 0 || tokensSeen < 0) {
            throw new IllegalArgumentException("step and tokensSeen must be >= 0, found " + step + ", " + tokensSeen);
        }
    }

    public int epoch() {
        return dataPosition.epoch();
    }
}
