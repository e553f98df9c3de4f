package dev.pet.gpt2;

import dev.pet.api.PetException;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.util.Map;
import java.util.Objects;

/** Hugging Face model directories: {@code config.json} plus {@code model.safetensors}. */
public final class Gpt2Checkpoint {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = "model.safetensors";

    private Gpt2Checkpoint() {
    }

    /** Loads config and weights; {@code overrides} replace config keys. */
    public static Gpt2Weights load(Path dir, Map<String, Object> overrides) {
        Objects.requireNonNull(dir, "dir");
        Path config = dir.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            throw new PetException(dir + ": no " + CONFIG + " (a Hugging Face GPT-2 directory has " + CONFIG
                    + " and " + WEIGHTS + ")");
        }
        Gpt2Config c = Gpt2Config.read(config, overrides);
        Path weights = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(weights)) {
            throw new PetException(dir + ": no " + WEIGHTS + " (only safetensors checkpoints are read; convert "
                    + "pytorch_model.bin with Hugging Face's save_pretrained(safe_serialization=True))");
        }
        Map<String, Tensor> tensors = SafeTensors.read(weights);
        return Gpt2Weights.of(c, tensors, weights.toString());
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} (float32, {@code transformer.}-prefixed names, no
     * {@code lm_head.weight} since it is tied), each atomically, creating the directory if needed.
     */
    public static void save(Gpt2Weights weights, Path dir) {
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(dir, "dir");
        try {
            AtomicFiles.writeString(dir.resolve(CONFIG), weights.config().toJson());
        } catch (IOException e) {
            throw new PetException("cannot write " + dir.resolve(CONFIG) + ": " + e.getMessage(), e);
        }
        SafeTensors.write(dir.resolve(WEIGHTS), weights.tensors(), Map.of("format", "pt"));
    }
}
