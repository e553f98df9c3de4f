package dev.pet.llama;

import dev.pet.hf.HfCheckpoint;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/** Hugging Face Llama-family directories: {@code config.json} plus safetensors weights (single or sharded). */
public final class LlamaCheckpoint {
    private LlamaCheckpoint() {
    }

    /** Loads config and weights; {@code overrides} replace config keys. */
    public static LlamaWeights load(Path dir, Map<String, Object> overrides) {
        Objects.requireNonNull(dir, "dir");
        LlamaConfig c = LlamaConfig.read(HfCheckpoint.configFile(dir), overrides);
        return LlamaWeights.of(c, HfCheckpoint.readWeights(dir), dir.toString());
    }

    /** {@link #save(LlamaWeights, Path, long)} with Hugging Face's default shard size. */
    public static void save(LlamaWeights weights, Path dir) {
        save(weights, dir, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * Writes {@code config.json} and the tensors as they are (element types kept), as one {@code model.safetensors}
     * or, above {@code maxShardBytes}, as shards with an index; each file atomically.
     */
    public static void save(LlamaWeights weights, Path dir, long maxShardBytes) {
        Objects.requireNonNull(weights, "weights");
        HfCheckpoint.writeConfig(dir, weights.config().toJson());
        HfCheckpoint.writeWeights(dir, weights.tensors(), maxShardBytes);
    }
}
