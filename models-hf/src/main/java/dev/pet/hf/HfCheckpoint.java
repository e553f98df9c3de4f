package dev.pet.hf;

import dev.pet.api.PetException;
import dev.pet.onnx.io.SafeTensors;
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
    public static final String WEIGHTS = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

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
        Path single = dir.resolve(WEIGHTS);
        if (Files.isRegularFile(single)) {
            return SafeTensors.read(single);
        }
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            throw new PetException(index + ": sharded checkpoints are not read yet; merge the shards into "
                    + WEIGHTS);
        }
        throw new PetException(dir + ": no " + WEIGHTS + " or " + INDEX + " (only safetensors checkpoints are read; "
                + "convert pytorch_model.bin with Hugging Face's save_pretrained(safe_serialization=True))");
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
