package dev.pet.runtime;

import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.serve.ServedModel;
import java.nio.file.Path;
import java.util.List;

/**
 * The training engine behind the commands that run models ({@code finetune}, {@code eval}, {@code generate},
 * {@code export}, {@code inspect}). Found with {@link java.util.ServiceLoader}; the runtime parses configs, discovers
 * plugins, and prepares listeners and caches, then delegates here.
 */
public interface PetEngine {
    /** Fine-tunes as the config says, reporting to {@code env.listener()}; resumes when {@code resume_training}. */
    TrainingSummary finetune(RunConfig config, RunEnvironment env);

    /**
     * Loss and perplexity of the configured model (and adapter; a base model when the config has no pet_config) on
     * {@code eval_dataset}, with an eval-only graph; also written to {@code output_dir/eval_results.json}.
     */
    EvalMetrics evaluate(EvalRequest request, RunEnvironment env);

    /** One completion per prompt, generated as a batch with a key/value cache; text streams to {@code sink}. */
    List<Completion> generate(GenerateRequest request, RunEnvironment env, TextSink sink);

    void export(ExportRequest request, RunEnvironment env);

    /**
     * The model {@code pet serve} serves: the config's base model in the generation form (with its PET method's
     * tensors as overridable inputs when it names one) and the ONNX Runtime adapters of {@code adapters} (null: none).
     */
    ServedModel openServed(RunConfig config, Path adapters, RunEnvironment env);

    ModelInspection inspect(RunConfig config, RunEnvironment env);
}
