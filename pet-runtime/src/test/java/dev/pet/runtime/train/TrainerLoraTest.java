package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.lora.LoraAdapter;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** End-to-end LoRA fine-tuning of gpt2-tiny through the Trainer API, YAML runs, checkpoints and resume. */
class TrainerLoraTest {
    @TempDir
    static Path dir;
    static Path corpus;

    @BeforeAll
    static void corpus() throws Exception {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            sb.append("The lamp was lit at dusk and the sea was calm. The keeper wrote the weather in the log.\n");
            sb.append("Wind the clockwork every four hours and keep the light burning for the ships.\n");
        }
        corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, sb);
        System.setProperty("user.home", dir.resolve("home").toString());
    }

    static final class Losses implements TrainingListener {
        final List<Double> values = new ArrayList<>();

        @Override
        public void onStep(StepMetrics s) {
            values.add(s.loss());
        }
    }

    /**
     * LoRA on every projection. gpt2-tiny is randomly initialised (HF scheme, std 0.02), so its frozen embeddings and
     * final LayerNorm bound the logits to about ±1.3 and no adapter can take the loss far below ~9.5 nats from the
     * uniform 10.8; the test asks for a clear, not a dramatic, decrease.
     */
    static final Map<String, Object> PET = Map.of("lora_rank", 8, "lora_alpha", 16,
            "target_modules", ".*(c_attn|c_proj|c_fc)");

    @Test
    void builderRunLowersTheLossAndWritesAPeftAdapter() throws Exception {
        Losses losses = new Losses();
        Path out = dir.resolve("builder");
        TrainingSummary s = Trainer.builder().task("text_generation").model("gpt2-tiny").petMethod("lora")
                .petConfig(PET)
                .trainDataset(corpus).evalDataset(corpus).seqLength(16).epochs(8).batchSize(4)
                .learningRate(1e-2).outputDir(out).seed(1).build().withListener(losses).finetune();
        assertEquals(TrainingSummary.StopReason.COMPLETED, s.reason());
        double first = losses.values.get(0);
        double last = losses.values.get(losses.values.size() - 1);
        assertTrue(last < first - 0.5, "loss " + first + " -> " + last);
        assertTrue(Files.isRegularFile(out.resolve("adapter").resolve(LoraAdapter.CONFIG_FILE)));
        assertTrue(Files.isRegularFile(out.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE)));
        assertTrue(Files.size(out.resolve("metrics.jsonl")) > 0);

        EvalMetrics eval = Trainer.builder().model("gpt2-tiny").petMethod("lora")
                .petConfig(PET)
                .trainDataset(corpus).evalDataset(corpus).seqLength(16).outputDir(out).seed(1).build().evaluate();
        assertTrue(eval.loss() < first - 0.4, "the trained adapter is used for evaluation: " + eval.loss());
        assertEquals(Math.exp(eval.loss()), eval.perplexity(), 1e-9);

        // A second fresh run into the finished run's directory is refused; overwriteOutputDir replaces it.
        Trainer.Builder again = Trainer.builder().model("gpt2-tiny").petMethod("lora").petConfig(PET)
                .trainDataset(corpus).seqLength(16).maxSteps(2).batchSize(4).outputDir(out).seed(1);
        dev.pet.runtime.config.ConfigException refused = org.junit.jupiter.api.Assertions.assertThrows(
                dev.pet.runtime.config.ConfigException.class, () -> again.build().finetune());
        assertTrue(refused.getMessage().contains("holds another run"), refused.getMessage());
        assertEquals(2, again.overwriteOutputDir(true).build().finetune().steps());
    }

    static String yaml(Path out, boolean resume) {
        return """
                seed: 5
                output_dir: %s
                resume_training: %s
                model:
                  model_config:
                    type: GPT2Config
                    checkpoint_name_or_path: gpt2-tiny
                    seq_length: 16
                    pet_config: {pet_type: lora, lora_rank: 4, lora_alpha: 8, lora_dropout: 0.1}
                  arch: {type: GPT2LMHeadModel}
                runner_config: {epochs: 100, batch_size: 2, max_steps: 120, gradient_accumulation_steps: 1}
                optimizer: {type: AdamW, weight_decay: 0.01, max_grad_norm: 1.0}
                lr_schedule: {type: cosine, learning_rate: 3.0e-3, warmup_steps: 5}
                train_dataset: {data_loader: {type: text, dataset_dir: %s, shuffle: true}}
                callbacks: {checkpoint_steps: 10, keep_checkpoints: 2, log_steps: 1}
                device: cpu
                """.formatted(out, resume, corpus);
    }

    /** Stands in for the process dying: an Error that nothing in the loop catches, so no checkpoint is written. */
    static final class Crash extends Error {
        Crash() {
            super("simulated crash");
        }
    }

    @Test
    void crashMidRunThenResumeGivesTheSameAdapterAsAnUninterruptedRun() throws Exception {
        Path full = dir.resolve("full");
        Files.createDirectories(full);
        Files.writeString(full.resolve("run.yaml"), yaml(full, false));
        Trainer.fromYaml(full.resolve("run.yaml")).finetune();

        Path crashed = dir.resolve("crashed");
        Files.createDirectories(crashed);
        Files.writeString(crashed.resolve("run.yaml"), yaml(crashed, false));
        TrainingListener dieAt37 = new TrainingListener() {
            @Override
            public void onStep(StepMetrics s) {
                if (s.step() == 37) {
                    throw new Crash();
                }
            }
        };
        org.junit.jupiter.api.Assertions.assertThrows(Crash.class,
                () -> Trainer.fromYaml(crashed.resolve("run.yaml")).withListener(dieAt37).finetune());
        assertTrue(!Files.exists(crashed.resolve("adapter")), "crashed before the end");
        assertTrue(Files.isDirectory(crashed.resolve("checkpoint-30")), "the last checkpoint before the crash");

        // One flipped bit in the newest checkpoint's optimizer state: resume falls back to checkpoint-20.
        Path state = crashed.resolve("checkpoint-30").resolve(GraphTrainStep.STATE_FILE);
        byte[] bytes = Files.readAllBytes(state);
        bytes[bytes.length - 5] ^= 0x10;
        Files.write(state, bytes);
        Files.writeString(crashed.resolve("run.yaml"), yaml(crashed, true));
        TrainingSummary resumed = Trainer.fromYaml(crashed.resolve("run.yaml")).finetune();
        assertEquals(120, resumed.steps());
        assertArrayEquals(Files.readAllBytes(full.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE)),
                Files.readAllBytes(crashed.resolve("adapter").resolve(LoraAdapter.WEIGHTS_FILE)),
                "the resumed run's final adapter is byte-identical to the uninterrupted run's, never trained on the "
                        + "corrupt state");
    }
}
