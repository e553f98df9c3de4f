package dev.pet.api.testkit;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Plain reading and writing of a PEFT adapter directory for the contract kit's independent writers and readers:
 * {@code adapter_config.json} through Jackson and {@code adapter_model.safetensors} through the safetensors codec,
 * with none of the plugins' adapter code in between.
 */
public final class PeftFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private PeftFiles() {
    }

    public static void write(Path dir, Map<String, Object> config, Map<String, Tensor> tensors) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("adapter_config.json"), JSON.writeValueAsString(config));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SafeTensors.write(dir.resolve("adapter_model.safetensors"), tensors, Map.of("format", "pt"));
    }

    public static Map<String, Object> config(Path dir) {
        try {
            return JSON.readValue(dir.resolve("adapter_config.json").toFile(), new TypeReference<>() { });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Map<String, Tensor> tensors(Path dir) {
        return SafeTensors.read(dir.resolve("adapter_model.safetensors"));
    }

    /** A float32 copy of a 2-D tensor, transposed (PEFT's [out, in] against a graph's [in, out]). */
    public static Tensor transposed(Tensor t) {
        long[] s = t.shape();
        int rows = (int) s[0];
        int cols = (int) s[1];
        float[] v = t.toFloatArray();
        float[] o = new float[v.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                o[j * rows + i] = v[i * cols + j];
            }
        }
        return Tensor.ofFloats(o, cols, rows);
    }

    /** A float32 copy. */
    public static Tensor float32(Tensor t) {
        return t.castTo(DataType.FLOAT);
    }
}
