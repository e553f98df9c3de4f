package dev.pet.adapter;

import dev.pet.api.AdapterFiles;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetConfig;
import dev.pet.api.PetConfigException;
import dev.pet.api.PetConfigs;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BitFit (Ben Zaken et al.): only the model's existing bias vectors train; the graph is unchanged. Files:
 * {@code adapter_config.json} (peft_type {@code BITFIT}) and the trained biases under their state-dict names.
 */
public final class BitFitAdapter implements PetAdapter<BitFitAdapter.Config> {
    /** Which biases train: those whose names match {@code biasPattern} (a regex over initializer names). */
    public record Config(String biasPattern) implements PetConfig {
        @Override
        public String petType() {
            return "bitfit";
        }
    }

    private static final Map<String, String> KEYS = Map.of("bias_pattern", "bias_pattern", "task_type", "task_type");

    @Override
    public String type() {
        return "bitfit";
    }

    @Override
    public Class<Config> configType() {
        return Config.class;
    }

    @Override
    public Config parseConfig(Map<String, Object> raw) {
        PetConfigs v = PetConfigs.bind(type(), raw, KEYS);
        String pattern = v.string("bias_pattern", ".*\\.bias");
        return v.build(() -> new Config(pattern));
    }

    /** The bias vectors the config trains, in graph order. */
    private List<String> biases(PretrainedModel model, Config c) {
        List<String> biases = new ArrayList<>();
        model.model().graph().initializers().forEach((name, t) -> {
            if (name.matches(c.biasPattern()) && t.dataType().isFloatingPoint() && t.rank() == 1) {
                biases.add(name);
            }
        });
        if (biases.isEmpty() && model.anatomy().linears().stream().allMatch(l -> l.bias() == null)) {
            throw new PetException("bitfit: " + model.name() + " has no bias vectors (its linear layers are "
                    + "bias-free, as in Llama without attention_bias); BitFit only trains existing biases, so use a "
                    + "model with biases (GPT-2, Qwen2) or another PET method");
        }
        if (biases.isEmpty()) {
            throw new PetConfigException(type(), "bias_pattern", "'" + c.biasPattern() + "' matches no bias of "
                    + model.name());
        }
        return biases;
    }

    @Override
    public PetModel getPetModel(PretrainedModel model, Config c) {
        return new PetModel(model, model.model().copy(), biases(model, c), c);
    }

    @Override
    public Map<String, Object> adapterPetConfig(Path directory) {
        Object pattern = AdapterFiles.readConfig(directory, "BITFIT").get("bias_pattern");
        return pattern == null ? Map.of() : Map.of("bias_pattern", pattern);
    }

    @Override
    public void saveAdapter(PetModel model, Map<String, Tensor> trainables, Path directory) {
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "BITFIT");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", model.base().name());
        cfg.put("bias_pattern", configOf(model).biasPattern());
        AdapterFiles.writeTrainables(directory, cfg, model, biases(model.base(), configOf(model)), trainables);
    }

    @Override
    public PetModel loadAdapter(PetModel model, Path directory) {
        return AdapterFiles.readTrainables(model, directory, "BITFIT", biases(model.base(), configOf(model)));
    }
}
