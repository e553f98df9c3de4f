package dev.pet.api.onnximport;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.ModelRequest.GraphForm;
import dev.pet.api.PetException;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.ir.Model;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * An exported decoder on disk: a {@code .onnx} file, or an Optimum-style directory ({@code model.onnx},
 * {@code decoder_model_merged.onnx} or {@code decoder_model.onnx}, external data such as {@code model.onnx_data} beside it, {@code config.json},
 * tokenizer files). External data is resolved against the model's folder and must stay inside it.
 *
 * @param file      the {@code .onnx} file
 * @param directory the folder holding it (where {@code config.json} and tokenizer files are looked for)
 * @param model     the graph, weights mapped from the file and its external data
 * @param config    {@code config.json} of the folder, or an empty map when there is none
 * @param merged    for an Optimum merged decoder, which branch was inlined ({@link MergedDecoder}); else null
 */
public record OnnxExport(Path file, Path directory, Model model, Map<String, Object> config, String merged) {
    /** Model file names of an export directory, in the order they are looked for. */
    public static final List<String> MODEL_FILES = List.of("model.onnx", "decoder_model_merged.onnx",
            "decoder_model.onnx", "decoder_with_past_model.onnx");
    /** config.json above this size is refused (Hugging Face configs are a few KiB). */
    public static final long MAX_CONFIG_BYTES = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    public OnnxExport {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(directory, "directory");
        Objects.requireNonNull(model, "model");
        config = Map.copyOf(config);
    }

    /**
     * True when {@code nameOrPath} names an ONNX export: a {@code .onnx} file, or a directory with one of
     * {@link #MODEL_FILES} and no {@code model.safetensors} (a Hugging Face checkpoint directory is not an export).
     */
    public static boolean isExport(String nameOrPath) {
        if (nameOrPath.endsWith(".onnx")) {
            return true;
        }
        Path p = Path.of(nameOrPath);
        return Files.isDirectory(p) && !Files.exists(p.resolve("model.safetensors")) && modelFile(p) != null;
    }

    private static Path modelFile(Path dir) {
        for (String n : MODEL_FILES) {
            if (Files.isRegularFile(dir.resolve(n))) {
                return dir.resolve(n);
            }
        }
        return null;
    }

    /** Reads the export {@code nameOrPath} names in the training form (see {@link #open(String, GraphForm)}). */
    public static OnnxExport open(String nameOrPath) {
        return open(nameOrPath, GraphForm.TRAINING);
    }

    /**
     * Reads the export {@code nameOrPath} names; every error names the file and the tensor or key at fault. A merged
     * decoder is read as the branch {@code form} needs: without past for training, with past for generation.
     */
    public static OnnxExport open(String nameOrPath, GraphForm form) {
        Path p = Path.of(nameOrPath);
        Path file = Files.isDirectory(p) ? modelFile(p) : p;
        if (file == null) {
            throw new PetException(nameOrPath + ": no ONNX model in the directory; expected one of " + MODEL_FILES);
        }
        if (!Files.isRegularFile(file)) {
            throw new PetException(file + ": no such ONNX file");
        }
        Path dir = file.toAbsolutePath().normalize().getParent();
        Model model;
        try {
            model = OnnxFiles.read(file);
        } catch (PetException e) {
            throw e;
        } catch (OnnxException e) {
            throw new PetException(e.getMessage(), e);
        }
        MergedDecoder.Selection merged = MergedDecoder.select(model, file.toString(),
                form == GraphForm.GENERATION);
        return new OnnxExport(file, dir, merged.model(), readConfig(dir.resolve("config.json")), merged.how());
    }

    /** The {@code model_type} in the {@code config.json} beside the export {@code nameOrPath} names, or null. */
    public static String modelTypeOf(String nameOrPath) {
        Path p = Path.of(nameOrPath);
        Path file = Files.isDirectory(p) ? modelFile(p) : p;
        Path dir = file == null ? p : file.toAbsolutePath().normalize().getParent();
        Object t = dir == null ? null : readConfig(dir.resolve("config.json")).get("model_type");
        return t == null ? null : t.toString();
    }

    /** The {@code model_type} of {@code config.json} ({@code gpt2}, {@code llama}), or null. */
    public String modelType() {
        Object t = config.get("model_type");
        return t == null ? null : t.toString();
    }

    /** An integer config key, or null when absent. */
    public Long configLong(String key) {
        Object v = config.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Number n && n.doubleValue() == n.longValue()) {
            return n.longValue();
        }
        throw new PetException(directory.resolve("config.json") + ": '" + key + "' must be an integer, found " + v);
    }

    private static Map<String, Object> readConfig(Path json) {
        if (!Files.isRegularFile(json)) {
            return Map.of();
        }
        try {
            long size = Files.size(json);
            if (size > MAX_CONFIG_BYTES) {
                throw new PetException(json + ": " + size + " bytes; a config.json above " + MAX_CONFIG_BYTES
                        + " bytes is not a model config");
            }
            Object o = JSON.readValue(json.toFile(), Object.class);
            if (!(o instanceof Map<?, ?> m)) {
                throw new PetException(json + ": expected a JSON object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) m;
            map.values().removeIf(Objects::isNull);
            return map;
        } catch (IOException e) {
            throw new PetException(json + ": not readable JSON: " + e.getMessage(), e);
        }
    }
}
