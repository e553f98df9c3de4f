package dev.pet.spark;

import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * Step time of data-parallel LoRA fine-tuning on local[1] (one replica, global batch 4) against local[2] (two
 * replicas of batch 2: the same global batch), and the gradient bytes each replica sends per step. GPT-2 small shape
 * (random weights), sequence 64, LoRA r=8 on c_attn, AdamW with clipping; 6 steps, the first one included.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class SparkScalingBenchmark {
    @TempDir
    Path dir;

    @Test
    void localOneVersusLocalTwo() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        Path corpus = DataParallelFixtures.corpus(dir);
        double[] ms = new double[3];
        long[] bytes = new long[3];
        String[][] runs = {{"local[1]", "4", "1"}, {"local[2]", "2", "2"}, {"local[2]", "4", "2"}};
        for (int i = 0; i < runs.length; i++) {
            Path out = dir.resolve("run" + i);
            Files.createDirectories(out);
            Files.writeString(out.resolve("run.yaml"), """
                    seed: 3
                    output_dir: %s
                    model:
                      model_config:
                        type: GPT2Config
                        checkpoint_name_or_path: gpt2
                        seq_length: 64
                        pet_config: {pet_type: lora, lora_rank: 8, lora_alpha: 16, target_modules: c_attn}
                      arch: {type: GPT2LMHeadModel}
                    runner_config: {epochs: 100, batch_size: %s, max_steps: 6, data_parallel: %s}
                    optimizer: {type: AdamW, max_grad_norm: 1.0}
                    lr_schedule: {type: constant, learning_rate: 1.0e-3}
                    train_dataset: {data_loader: {type: text, dataset_dir: %s}}
                    callbacks: {checkpoint_steps: 0, log_steps: 1}
                    """.formatted(out, runs[i][1], runs[i][2], corpus));
            RunConfig config = RunConfigLoader.load(out.resolve("run.yaml"), List.of());
            SparkSession spark = SparkSession.builder().master(runs[i][0]).appName("pet-spark bench")
                    .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                    .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
            try {
                SparkFinetune.Result r = SparkFinetune.run(JavaSparkContext.fromSparkContext(spark.sparkContext()),
                        config);
                ms[i] = r.replicas().stream().mapToDouble(ReplicaStats::meanStepMillis).max().orElseThrow();
                bytes[i] = r.leader().exchangedBytes() / r.leader().steps();
            } finally {
                spark.stop();
            }
        }
        System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", "master", "replicas x batch", "ms/step",
                "samples/s", "bytes sent/replica/step");
        for (int i = 0; i < runs.length; i++) {
            int global = Integer.parseInt(runs[i][1]) * Integer.parseInt(runs[i][2]);
            System.out.printf(Locale.ROOT, "| %s | %s x %s | %.0f | %.2f | %d |%n", runs[i][0], runs[i][2], runs[i][1],
                    ms[i], global * 1000.0 / ms[i], bytes[i]);
        }
    }
}
