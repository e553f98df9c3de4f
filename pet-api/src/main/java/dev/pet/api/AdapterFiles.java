package dev.pet.api;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pet.onnx.io.AtomicFiles;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The PEFT adapter directory layout shared by PET plugins: {@code adapter_config.json} and
 * {@code adapter_model.safetensors}, written atomically and read with clear errors.
 */
public final class AdapterFiles {
    public static final String CONFIG_FILE = "adapter_config.json";
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private AdapterFiles() {
    }

    public static void write(Path dir, Map<String, Object> config, Map<String, Tensor> weights) {
        try {
            Files.createDirectories(dir);
            SafeTensors.write(dir.resolve(WEIGHTS_FILE), weights, Map.of("format", "pt"));
            AtomicFiles.write(dir.resolve(CONFIG_FILE), JSON.writeValueAsBytes(config));
        } catch (IOException e) {
            throw new PetException("cannot write adapter to " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The config of an adapter directory, checking its {@code peft_type}. */
    public static Map<String, Object> readConfig(Path dir, String expectedPeftType) {
        Path cfg = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(cfg) || !Files.isRegularFile(dir.resolve(WEIGHTS_FILE))) {
            throw new PetException(dir + " is not an adapter directory: it needs " + CONFIG_FILE + " and "
                    + WEIGHTS_FILE);
        }
        Map<String, Object> m;
        try {
            m = JSON.readValue(cfg.toFile(), new TypeReference<>() { });
        } catch (IOException e) {
            throw new PetException(cfg + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!expectedPeftType.equalsIgnoreCase(String.valueOf(m.get("peft_type")))) {
            throw new PetException(cfg + ": peft_type is " + m.get("peft_type") + ", expected " + expectedPeftType);
        }
        return m;
    }

    public static Map<String, Tensor> readWeights(Path dir) {
        return SafeTensors.read(dir.resolve(WEIGHTS_FILE));
    }

    /** Writes the model's trainable tensors under their own names, with {@code config}. */
    public static void writeTrainables(Path dir, Map<String, Object> config, PetModel model,
            Map<String, Tensor> values) {
        Map<String, Tensor> w = new java.util.LinkedHashMap<>();
        for (String t : model.trainables()) {
            Tensor v = values.get(t);
            if (v == null) {
                throw new PetException("no value for trainable tensor '" + t + "'");
            }
            w.put(t, v);
        }
        write(dir, config, w);
    }

    /** Reads what {@link #writeTrainables} wrote into the model's trainables, checking type and shapes. */
    public static PetModel readTrainables(PetModel model, Path dir, String peftType) {
        readConfig(dir, peftType);
        Map<String, Tensor> w = readWeights(dir);
        Map<String, Tensor> values = new java.util.LinkedHashMap<>();
        for (String t : model.trainables()) {
            values.put(t, require(dir, w, t, model.model().graph().initializer(t).shape()));
        }
        return model.withTrainables(values);
    }

    /** A weight of the file with the expected shape, or an error naming file, key and shapes. */
    public static Tensor require(Path dir, Map<String, Tensor> weights, String key, long... shape) {
        Tensor t = weights.get(key);
        if (t == null) {
            throw new PetException(dir.resolve(WEIGHTS_FILE) + ": missing tensor '" + key + "'");
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new PetException(dir.resolve(WEIGHTS_FILE) + ": '" + key + "' has shape "
                    + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(shape));
        }
        return t;
    }
}
