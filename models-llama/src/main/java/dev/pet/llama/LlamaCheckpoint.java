package dev.pet.llama;

import dev.pet.hf.HfCheckpoint;
import dev.pet.onnx.io.SafeTensors;
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

    /** Writes {@code config.json} and {@code model.safetensors} (tensors as they are), each atomically. */
    public static void save(LlamaWeights weights, Path dir) {
        Objects.requireNonNull(weights, "weights");
        HfCheckpoint.writeConfig(dir, weights.config().toJson());
        SafeTensors.write(dir.resolve(HfCheckpoint.WEIGHTS), weights.tensors(), Map.of("format", "pt"));
    }
}
