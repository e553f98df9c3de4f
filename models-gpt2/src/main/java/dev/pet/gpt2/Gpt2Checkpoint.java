package dev.pet.gpt2;

import dev.pet.hf.HfCheckpoint;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/** Hugging Face model directories: {@code config.json} plus {@code model.safetensors}. */
public final class Gpt2Checkpoint {
    public static final String CONFIG = HfCheckpoint.CONFIG;
    public static final String WEIGHTS = HfCheckpoint.WEIGHTS;

    private Gpt2Checkpoint() {
    }

    /** Loads config and weights; {@code overrides} replace config keys. */
    public static Gpt2Weights load(Path dir, Map<String, Object> overrides) {
        Objects.requireNonNull(dir, "dir");
        Gpt2Config c = Gpt2Config.read(HfCheckpoint.configFile(dir), overrides);
        Map<String, Tensor> tensors = HfCheckpoint.readWeights(dir);
        return Gpt2Weights.of(c, tensors, dir.toString());
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} (float32, {@code transformer.}-prefixed names, no
     * {@code lm_head.weight} since it is tied), each atomically, creating the directory if needed.
     */
    public static void save(Gpt2Weights weights, Path dir) {
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(dir, "dir");
        HfCheckpoint.writeConfig(dir, weights.config().toJson());
        SafeTensors.write(dir.resolve(WEIGHTS), weights.tensors(), Map.of("format", "pt"));
    }
}
