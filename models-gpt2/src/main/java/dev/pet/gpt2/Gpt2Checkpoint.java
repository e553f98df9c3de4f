package dev.pet.gpt2;

import dev.pet.api.PetException;
import dev.pet.onnx.io.CheckpointTensors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.util.Map;
import java.util.Objects;

/**
 * Hugging Face model directories: {@code config.json} plus the weights in either safetensors layout, one
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json} (read through
 * {@link CheckpointTensors}).
 */
public final class Gpt2Checkpoint {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = CheckpointTensors.SINGLE_FILE;
    /** Hugging Face's default {@code max_shard_size} (5 GB): larger checkpoints are saved sharded. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    private Gpt2Checkpoint() {
    }

    /** Loads config and weights; {@code overrides} replace config keys. */
    public static Gpt2Weights load(Path dir, Map<String, Object> overrides) {
        Objects.requireNonNull(dir, "dir");
        Path config = dir.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            throw new PetException(dir + ": no " + CONFIG + " (a Hugging Face GPT-2 directory has " + CONFIG
                    + " and " + WEIGHTS + " or " + CheckpointTensors.INDEX_FILE + ")");
        }
        Gpt2Config c = Gpt2Config.read(config, overrides);
        if (!CheckpointTensors.isPresent(dir)) {
            throw new PetException(dir + ": no " + WEIGHTS + " or " + CheckpointTensors.INDEX_FILE
                    + " (only safetensors checkpoints are read; convert pytorch_model.bin with Hugging Face's "
                    + "save_pretrained(safe_serialization=True))");
        }
        CheckpointTensors tensors = CheckpointTensors.read(dir);
        return Gpt2Weights.of(c, tensors.tensors(), dir.toString());
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
        try {
            AtomicFiles.writeString(dir.resolve(CONFIG), weights.config().toJson());
        } catch (IOException e) {
            throw new PetException("cannot write " + dir.resolve(CONFIG) + ": " + e.getMessage(), e);
        }
        CheckpointTensors.write(dir, weights.tensors(), maxShardBytes);
    }
}
