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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
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
        Map<String, Object> m = readAnyConfig(dir);
        if (!expectedPeftType.equalsIgnoreCase(String.valueOf(m.get("peft_type")))) {
            throw new PetException(dir.resolve(CONFIG_FILE) + ": peft_type is " + m.get("peft_type") + ", expected "
                    + expectedPeftType);
        }
        return m;
    }

    /**
     * The {@code peft_type} of an adapter directory: PEFT's name of the algorithm ({@code LORA},
     * {@code PREFIX_TUNING}; {@code BOTTLENECK_ADAPTER} and {@code BITFIT} for ours), which, lowercased, is the
     * type or an alias of the PET algorithm that reads it.
     */
    public static String peftType(Path dir) {
        Object t = readAnyConfig(dir).get("peft_type");
        if (!(t instanceof String s) || s.isBlank()) {
            throw new PetException(dir.resolve(CONFIG_FILE) + ": peft_type is missing; expected PEFT's name of the "
                    + "algorithm, e.g. \"LORA\"");
        }
        return s;
    }

    private static Map<String, Object> readAnyConfig(Path dir) {
        Path cfg = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(cfg) || !Files.isRegularFile(dir.resolve(WEIGHTS_FILE))) {
            throw new PetException(dir + " is not an adapter directory: it needs " + CONFIG_FILE + " and "
                    + WEIGHTS_FILE);
        }
        try {
            return JSON.readValue(cfg.toFile(), new TypeReference<>() { });
        } catch (IOException e) {
            throw new PetException(cfg + ": not valid JSON (" + e.getMessage() + ")", e);
        }
    }

    public static Map<String, Tensor> readWeights(Path dir) {
        return SafeTensors.read(dir.resolve(WEIGHTS_FILE));
    }

    /**
     * Writes the algorithm's trainable tensors under their own names, any other trainable tensor as a
     * {@link #MODULES_TO_SAVE} entry, and {@code config}.
     */
    public static void writeTrainables(Path dir, Map<String, Object> config, PetModel model,
            Collection<String> algorithmTensors, Map<String, Tensor> values) {
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (String t : model.trainables()) {
            if (algorithmTensors.contains(t)) {
                w.put(t, value(values, t));
            }
        }
        Map<String, Object> cfg = new LinkedHashMap<>(config);
        putModulesToSave(cfg, w, model, algorithmTensors, values, MODULES_PREFIX);
        write(dir, cfg, w);
    }

    /** Reads what {@link #writeTrainables} wrote into the model, checking type and shapes. */
    public static PetModel readTrainables(PetModel model, Path dir, String peftType,
            Collection<String> algorithmTensors) {
        Map<String, Object> cfg = readConfig(dir, peftType);
        Map<String, Tensor> w = readWeights(dir);
        Map<String, Tensor> values = new LinkedHashMap<>();
        for (String t : algorithmTensors) {
            values.put(t, require(dir, w, t, model.model().graph().initializer(t).shape()));
        }
        return withModulesToSave(model.withTrainables(values), dir, cfg, w, MODULES_PREFIX, values.keySet());
    }

    /** adapter_config.json key listing the base-model modules trained and saved whole beside the adapter. */
    public static final String MODULES_TO_SAVE = "modules_to_save";
    /** Where PEFT puts modules_to_save tensors of a tuner model (LoRA): {@code base_model.model.<state-dict name>}. */
    public static final String MODULES_PREFIX = "base_model.model.";

    private static Tensor value(Map<String, Tensor> values, String name) {
        Tensor v = values.get(name);
        if (v == null) {
            throw new PetException("no value for trainable tensor '" + name + "'");
        }
        return v;
    }

    /**
     * Base-model tensors trained beside the algorithm's own (unfrozen with {@code freeze_exclude}), written as PEFT
     * writes {@code modules_to_save}: each full tensor under {@code keyPrefix} + its state-dict name, and its module
     * (the name less its last component) listed under {@value #MODULES_TO_SAVE} in {@code config} (null when none).
     */
    public static void putModulesToSave(Map<String, Object> config, Map<String, Tensor> weights, PetModel model,
            Collection<String> algorithmTensors, Map<String, Tensor> values, String keyPrefix) {
        List<String> modules = new ArrayList<>();
        for (String t : model.trainables()) {
            if (algorithmTensors.contains(t)) {
                continue;
            }
            weights.put(keyPrefix + t, value(values, t));
            String module = t.contains(".") ? t.substring(0, t.lastIndexOf('.')) : t;
            if (!modules.contains(module)) {
                modules.add(module);
            }
        }
        config.put(MODULES_TO_SAVE, modules.isEmpty() ? null : modules);
    }

    /**
     * The model with an adapter's {@code modules_to_save} applied, as PEFT loads them: every file tensor
     * {@code keyPrefix + name} (other than the algorithm's {@code consumedKeys}) whose module is a listed module or
     * ends with {@code "." + a listed name} must be a tensor of the model of the same shape; it becomes trainable with
     * the file's value. A listed module without tensors in the file is an error: its training would be lost.
     */
    public static PetModel withModulesToSave(PetModel model, Path dir, Map<String, Object> config,
            Map<String, Tensor> weights, String keyPrefix, Collection<String> consumedKeys) {
        Object listed = config.get(MODULES_TO_SAVE);
        if (listed == null) {
            return model;
        }
        if (!(listed instanceof List<?> list)) {
            throw new PetException(dir.resolve(CONFIG_FILE) + ": " + MODULES_TO_SAVE
                    + " must be a list of module names, found " + listed);
        }
        Path file = dir.resolve(WEIGHTS_FILE);
        Map<String, Tensor> values = new LinkedHashMap<>();
        for (Object o : list) {
            String module = String.valueOf(o);
            int found = 0;
            for (Map.Entry<String, Tensor> e : weights.entrySet()) {
                String key = e.getKey();
                if (consumedKeys.contains(key) || !key.startsWith(keyPrefix)) {
                    continue;
                }
                String name = key.substring(keyPrefix.length());
                String owner = name.contains(".") ? name.substring(0, name.lastIndexOf('.')) : "";
                if (!owner.equals(module) && !owner.endsWith("." + module)) {
                    continue;
                }
                Tensor base = model.model().graph().initializer(name);
                if (base == null) {
                    throw new PetException(file + ": modules_to_save tensor '" + key + "' is not a tensor of "
                            + model.base().name() + " (no initializer '" + name + "')");
                }
                values.put(name, require(dir, weights, key, base.shape()));
                found++;
            }
            if (found == 0) {
                throw new PetException(file + ": " + CONFIG_FILE + " lists module '" + module + "' in "
                        + MODULES_TO_SAVE + " but the file holds no '" + keyPrefix + "..." + module
                        + ".<param>' tensor");
            }
        }
        List<String> trainables = new ArrayList<>(model.trainables());
        for (String name : values.keySet()) {
            if (!trainables.contains(name)) {
                trainables.add(name);
            }
        }
        return new PetModel(model.base(), model.model(), trainables, model.config()).withTrainables(values);
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
