package dev.pet.runtime;

import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.TrainingSummary;

/**
 * The training engine behind the commands that run models ({@code finetune}, {@code eval}, {@code generate},
 * {@code export}, {@code inspect}). Found with {@link java.util.ServiceLoader}; the runtime parses configs, discovers
 * plugins, and prepares listeners and caches, then delegates here.
 */
public interface PetEngine {
    /** Fine-tunes as the config says, reporting to {@code env.listener()}; resumes when {@code resume_training}. */
    TrainingSummary finetune(RunConfig config, RunEnvironment env);

    /** Loss and perplexity of the configured model (and adapter) on {@code eval_dataset}. */
    EvalMetrics evaluate(RunConfig config, RunEnvironment env);

    /** The text generated after the prompt. */
    String generate(GenerateRequest request, RunEnvironment env);

    void export(ExportRequest request, RunEnvironment env);

    ModelInspection inspect(RunConfig config, RunEnvironment env);
}
