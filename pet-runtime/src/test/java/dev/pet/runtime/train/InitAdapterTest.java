package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code init_adapter} continues from a saved adapter for every PET type (PEFT's
 * {@code from_pretrained(..., is_trainable=True)}): a run that ends with an adapter, and a second run started from
 * it, measure the same loss on the same data, and the second run's first training step starts from that adapter.
 */
class InitAdapterTest {
    @TempDir
    static Path dir;
    static Path corpus;

    @BeforeAll
    static void corpus() throws Exception {
        corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The lamp was lit at dusk and the sea was calm. The keeper wrote the weather.\n"
                .repeat(6));
        System.setProperty("user.home", dir.resolve("home").toString());
    }

    static String yaml(Path out, String pet, long steps) {
        return """
                seed: 5
                output_dir: %s
                model:
                  model_config:
                    type: GPT2Config
                    checkpoint_name_or_path: gpt2-tiny
                    seq_length: 12
                    pet_config: %s
                runner_config: {epochs: 100, batch_size: 2, max_steps: %d}
                optimizer: {type: AdamW, weight_decay: 0.0}
                lr_schedule: {type: constant, learning_rate: 2.0e-2}
                train_dataset: {data_loader: {type: text, dataset_dir: %s, shuffle: false}}
                eval_dataset: {data_loader: {type: text, dataset_dir: %s, shuffle: false}}
                callbacks: {checkpoint_steps: 0, log_steps: 1}
                device: cpu
                """.formatted(out, pet, steps, corpus, corpus);
    }

    static final class FirstLoss implements TrainingListener {
        final List<Double> losses = new ArrayList<>();

        @Override
        public void onStep(StepMetrics s) {
            losses.add(s.loss());
        }
    }

    private static Trainer run(String name, String yaml) throws Exception {
        Path file = dir.resolve(name + ".yaml");
        Files.writeString(file, yaml);
        return Trainer.fromYaml(file);
    }

    static final class Evaluations implements TrainingListener {
        final List<Double> losses = new ArrayList<>();

        @Override
        public void onEvaluation(EvalMetrics m) {
            losses.add(m.loss());
        }
    }

    /**
     * The first run evaluates after each step and at the end (with the trained values still in the session); the
     * second run, started from the saved adapter, must measure that final loss. The loss moves by far more than the
     * 1e-6 tolerance per step, so a second run that ignored the adapter could not pass.
     */
    @ParameterizedTest
    @ValueSource(strings = {
        "{pet_type: lora, r: 4, lora_alpha: 8, target_modules: [c_attn, c_proj]}",
        "{pet_type: prefix_tuning, num_virtual_tokens: 3}",
        "{pet_type: prefix_tuning, num_virtual_tokens: 3, prefix_projection: true, encoder_hidden_size: 8}",
        "{pet_type: p_tuning_v2, num_virtual_tokens: 2}",
        "{pet_type: adapter, bottleneck_size: 4}",
        "{pet_type: bitfit}"})
    void aSavedAdapterResumesWithTheLossItEndedWith(String pet) throws Exception {
        String name = pet.replaceAll("[^a-z0-9]+", "_");
        Path first = dir.resolve(name + "-first");
        Evaluations evals = new Evaluations();
        run(name + "-first", yaml(first, pet, 2).replace("log_steps: 1", "log_steps: 1, eval_steps: 1"))
                .withListener(evals).finetune();
        List<Double> l = evals.losses;
        double ended = l.get(l.size() - 1);
        assertTrue(Math.abs(l.get(0) - ended) > 1e-4, "the eval loss moves with training: " + l);

        Path second = dir.resolve(name + "-second");
        String continued = pet.replace("}", ", init_adapter: " + first.resolve(TrainingLoop.ADAPTER_DIR) + "}");
        double resumed = run(name + "-second", yaml(second, continued, 1)).evaluate().loss();
        assertEquals(ended, resumed, 1e-6, "loss the first run ended with vs. a run continuing from its adapter");
    }

    @Test
    void aContinuedRunTrainsOnFromTheAdapter() throws Exception {
        String pet = "{pet_type: lora, r: 4, lora_alpha: 8}";
        Path first = dir.resolve("cont-first");
        FirstLoss a = new FirstLoss();
        run("cont-first", yaml(first, pet, 6)).withListener(a).finetune();
        Path second = dir.resolve("cont-second");
        FirstLoss b = new FirstLoss();
        run("cont-second", yaml(second, pet.replace("}", ", init_adapter: " + first.resolve("adapter") + "}"), 2))
                .withListener(b).finetune();
        assertTrue(b.losses.get(0) < a.losses.get(0) - 1e-3, "the continued run starts below a fresh one: "
                + b.losses.get(0) + " vs " + a.losses.get(0));
    }

    @Test
    void aRunConfigContradictingTheAdaptersConfigIsRefusedNamingBothValues() throws Exception {
        Path first = dir.resolve("contra-first");
        run("contra-first", yaml(first, "{pet_type: lora, r: 4, lora_alpha: 32}", 1)).finetune();
        String bad = "{pet_type: lora, lora_alpha: 16, init_adapter: " + first.resolve("adapter") + "}";
        PetException e = assertThrows(PetException.class,
                () -> run("contra-second", yaml(dir.resolve("contra-second"), bad, 1)).evaluate());
        assertTrue(e.getMessage().contains("32") && e.getMessage().contains("16")
                && e.getMessage().contains("adapter_config.json"), e.getMessage());
    }
}
