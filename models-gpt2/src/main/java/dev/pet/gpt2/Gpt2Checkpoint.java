package dev.pet.gpt2;

import dev.pet.hf.HfCheckpoint;
import dev.pet.onnx.io.CheckpointTensors;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/**
 * Hugging Face model directories: {@code config.json} plus the weights in either safetensors layout, one
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json} (read through
 * {@link HfCheckpoint}).
 */
public final class Gpt2Checkpoint {
    public static final String CONFIG = HfCheckpoint.CONFIG;
    public static final String WEIGHTS = HfCheckpoint.WEIGHTS;
    /** Hugging Face's default {@code max_shard_size} (5 GB): larger checkpoints are saved sharded. */
    public static final long DEFAULT_MAX_SHARD_BYTES = HfCheckpoint.DEFAULT_MAX_SHARD_BYTES;

    private Gpt2Checkpoint() {
    }

    /** Loads config and weights; {@code overrides} replace config keys. */
    public static Gpt2Weights load(Path dir, Map<String, Object> overrides) {
        Objects.requireNonNull(dir, "dir");
        Gpt2Config c = Gpt2Config.read(HfCheckpoint.configFile(dir), overrides);
        return Gpt2Weights.of(c, HfCheckpoint.readWeights(dir), dir.toString());
    }

    /** {@link #save(Gpt2Weights, Path, long)} with Hugging Face's default shard size. */
    public static void save(Gpt2Weights weights, Path dir) {
        save(weights, dir, DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * Writes {@code config.json} and the float32 weights ({@code transformer.}-prefixed names, no
     * {@code lm_head.weight} since it is tied), as one {@code model.safetensors} or, above {@code maxShardBytes},
     * as shards with an index; each file atomically, creating the directory if needed.
     */
    public static void save(Gpt2Weights weights, Path dir, long maxShardBytes) {
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(dir, "dir");
        HfCheckpoint.writeConfig(dir, weights.config().toJson());
        CheckpointTensors.write(dir, weights.tensors(), maxShardBytes);
    }
}
