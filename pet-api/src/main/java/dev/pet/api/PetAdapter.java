package dev.pet.api;

import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * Service-provider interface of a PET algorithm (MindFormers' {@code PetAdapter}): binds its configuration, injects
 * its nodes into a model, and reads and writes its adapter files. Found through {@link java.util.ServiceLoader} by
 * {@link #type()} or an alias.
 *
 * <p>Callers holding a {@code PetAdapter<?>} start from a plain map with {@link #getPetModel(PretrainedModel, Map)};
 * the algorithm reads its typed config back from a {@link PetModel} with {@link #configOf(PetModel)}.
 *
 * @param <C> the algorithm's configuration record
 */
public interface PetAdapter<C extends PetConfig> {
    /** Short, lowercase, unique type name, e.g. {@code lora}. */
    String type();

    /** Other names accepted for this type ({@code prefixtuning} for {@code prefix_tuning}). */
    default Set<String> aliases() {
        return Set.of();
    }

    /** The class of the algorithm's configuration. */
    Class<C> configType();

    /**
     * Binds a plain map (YAML {@code pet_config}) to the algorithm's config; unknown keys are errors.
     *
     * @throws PetConfigException naming the key at fault
     */
    C parseConfig(Map<String, Object> raw);

    /** The model with this algorithm's nodes injected and its trainable tensors declared (get_pet_model). */
    PetModel getPetModel(PretrainedModel model, C config);

    /** Binds {@code rawConfig} with {@link #parseConfig} and injects the algorithm. */
    default PetModel getPetModel(PretrainedModel model, Map<String, Object> rawConfig) {
        return getPetModel(model, parseConfig(rawConfig));
    }

    /** Writes an adapter directory (the algorithm's PEFT layout) from trained tensor values. */
    void saveAdapter(PetModel model, Map<String, Tensor> trainables, Path directory);

    /**
     * The options an adapter directory's {@code adapter_config.json} fixes, as {@code pet_config} keys this algorithm
     * accepts (for LoRA {@code r}, {@code lora_alpha}, {@code target_modules}, ...). Continuing from an adapter
     * ({@code init_adapter}) or evaluating, generating and exporting with one builds the model from these; a run
     * config may restate them but not contradict them. Size options are checked here (an {@code r} of 0 or 1e9 is
     * refused naming the file). By default nothing: the run config alone defines the model.
     */
    default Map<String, Object> adapterPetConfig(Path directory) {
        return Map.of();
    }

    /** Reads an adapter directory written by {@link #saveAdapter} (or by PEFT) into the model's trainables. */
    PetModel loadAdapter(PetModel model, Path directory);

    /**
     * A standalone model for export with the adapter applied. By default the PET graph in inference mode with the
     * trained tensors as constants; algorithms that can fold themselves into the base weights (LoRA) override this
     * to return the base graph with merged weights.
     */
    default dev.pet.onnx.ir.Model mergedModel(PetModel model, Map<String, Tensor> trainables) {
        return model.withTrainables(trainables).inferenceModel();
    }

    /** The config of a model this algorithm made; an error when another algorithm made it. */
    default C configOf(PetModel model) {
        PetConfig c = model.config();
        if (!configType().isInstance(c)) {
            throw new PetException(type() + ": the PET model was made by '" + c.petType() + "', not by " + type());
        }
        return configType().cast(c);
    }
}
