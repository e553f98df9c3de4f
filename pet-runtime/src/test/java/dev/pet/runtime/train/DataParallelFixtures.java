package dev.pet.runtime.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The corpus and run config of the data-parallel tests: the threads-as-replicas tests here and the Spark tests of
 * pet-spark (through this module's test-jar) train the same run.
 */
public final class DataParallelFixtures {
    private DataParallelFixtures() {
    }

    /** A small text corpus, {@code dir/corpus.txt}. */
    public static Path corpus(Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            sb.append("The lamp was lit at dusk and the sea was calm. The keeper wrote the weather in the log.\n");
            sb.append("Wind the clockwork every four hours and keep the light burning for the ships.\n");
        }
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, sb);
        return corpus;
    }

    /**
     * A config whose step exercises every part of the optimizer's semantics: gpt2-tiny with LoRA, 10 AdamW steps with
     * weight decay, clipping at a norm the gradients exceed, two accumulated micro-batches, a warmup-cosine schedule
     * and a checkpoint every 4 steps.
     */
    public static String yaml(Path out, Path corpus, int batchSize, int replicas) {
        return """
                seed: 7
                output_dir: %s
                model:
                  model_config:
                    type: GPT2Config
                    checkpoint_name_or_path: gpt2-tiny
                    seq_length: 16
                    pet_config: {pet_type: lora, lora_rank: 4, lora_alpha: 8, lora_dropout: 0.0}
                  arch: {type: GPT2LMHeadModel}
                runner_config: {epochs: 100, batch_size: %d, max_steps: 10, gradient_accumulation_steps: 2,
                  data_parallel: %d}
                optimizer: {type: AdamW, weight_decay: 0.01, max_grad_norm: 0.05}
                lr_schedule: {type: cosine, learning_rate: 5.0e-3, warmup_steps: 3}
                train_dataset: {data_loader: {type: text, dataset_dir: %s, shuffle: true}}
                callbacks: {checkpoint_steps: 4, keep_checkpoints: 2, log_steps: 1}
                device: cpu
                """.formatted(out, batchSize, replicas, corpus);
    }
}
