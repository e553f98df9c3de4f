package dev.pet.hf;

import dev.pet.api.PetException;
import dev.pet.onnx.io.CheckpointTensors;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Objects;

/**
 * The files of a Hugging Face model directory: {@code config.json} and the weights, {@code model.safetensors} or
 * shards listed by {@code model.safetensors.index.json}. Tensors are memory-mapped, not copied.
 */
public final class HfCheckpoint {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = CheckpointTensors.SINGLE_FILE;
    public static final String INDEX = CheckpointTensors.INDEX_FILE;
    /** Hugging Face's default {@code max_shard_size} (5 GB): larger checkpoints are saved sharded. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    private HfCheckpoint() {
    }

    /** The directory's {@code config.json}; fails naming what a model directory should hold. */
    public static Path configFile(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path config = dir.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            throw new PetException(dir + ": no " + CONFIG + " (a Hugging Face model directory has " + CONFIG
                    + " and " + WEIGHTS + " or " + INDEX + " with its shards)");
        }
        return config;
    }

    /** The state dict of a directory: {@code model.safetensors}, else the shards of its index. */
    public static Map<String, Tensor> readWeights(Path dir) {
        Objects.requireNonNull(dir, "dir");
        if (CheckpointTensors.isPresent(dir)) {
            return CheckpointTensors.read(dir).tensors();
        }
        throw new PetException(dir + ": no " + WEIGHTS + " or " + INDEX + " (only safetensors checkpoints are read; "
                + "convert pytorch_model.bin with Hugging Face's save_pretrained(safe_serialization=True))");
    }

    /**
     * Writes tensors as {@code model.safetensors} or, above {@code maxShardBytes}, as shards with
     * {@code model.safetensors.index.json}, each file atomically.
     */
    public static void writeWeights(Path dir, Map<String, Tensor> tensors, long maxShardBytes) {
        CheckpointTensors.write(dir, tensors, maxShardBytes);
    }

    /** Writes {@code config.json} text atomically, creating the directory if needed. */
    public static void writeConfig(Path dir, String json) {
        try {
            Files.createDirectories(dir);
            Path tmp = dir.resolve(CONFIG + ".tmp");
            Files.writeString(tmp, json, StandardCharsets.UTF_8);
            Files.move(tmp, dir.resolve(CONFIG), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new PetException("cannot write " + dir.resolve(CONFIG) + ": " + e.getMessage(), e);
        }
    }
}
