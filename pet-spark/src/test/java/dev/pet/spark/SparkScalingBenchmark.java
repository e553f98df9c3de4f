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
 * replicas of batch 2: the same global batch; and of batch 4), with the ring exchange and with Spark's allGather, and
 * the gradient bytes each replica sends per step. GPT-2 small shape (random weights; {@code -Dpet.bench.model=gpt2-tiny}
 * for a smoke run), sequence 64, LoRA r=8 on c_attn, AdamW with clipping; 8 steps, the first one included.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class SparkScalingBenchmark {
    @TempDir
    Path dir;

    @Test
    void localOneVersusLocalTwo() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        // Enough 64-token windows for 8 steps of 8 rows without repeating an epoch.
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, Files.readString(DataParallelFixtures.corpus(dir)).repeat(24));
        String model = System.getProperty("pet.bench.model", "gpt2");
        String[][] runs = {{"local[1]", "4", "1", "ring"}, {"local[2]", "2", "2", "ring"}, {"local[2]", "4", "2", "ring"},
            {"local[2]", "2", "2", "barrier"}};
        double[] ms = new double[runs.length];
        String[] perRank = new String[runs.length];
        long[] bytes = new long[runs.length];
        double[] wall = new double[runs.length];
        System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s |%n", "master", "exchange",
                "replicas x batch", "ms/step (slowest rank)", "ms/step per rank", "samples/s",
                "bytes sent/replica/step", "stage wall s (load, compile, 8 steps)");
        for (int i = 0; i < runs.length; i++) {
            Path out = dir.resolve("run" + i);
            Files.createDirectories(out);
            Files.writeString(out.resolve("run.yaml"), """
                    seed: 3
                    output_dir: %s
                    model:
                      model_config:
                        type: GPT2Config
                        checkpoint_name_or_path: %s
                        seq_length: 64
                        pet_config: {pet_type: lora, lora_rank: 8, lora_alpha: 16, target_modules: [c_attn]}
                      arch: {type: GPT2LMHeadModel}
                    runner_config: {epochs: 100, batch_size: %s, max_steps: 8, data_parallel: %s}
                    optimizer: {type: AdamW, max_grad_norm: 1.0}
                    lr_schedule: {type: constant, learning_rate: 1.0e-3}
                    train_dataset: {data_loader: {type: text, dataset_dir: %s}}
                    callbacks: {checkpoint_steps: 0, log_steps: 1}
                    """.formatted(out, model, runs[i][1], runs[i][2], corpus));
            RunConfig config = RunConfigLoader.load(out.resolve("run.yaml"), List.of());
            SparkSession spark = SparkSession.builder().master(runs[i][0]).appName("pet-spark bench")
                    .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                    .config("spark.driver.bindAddress", "127.0.0.1").config(Exchange.SETTING, runs[i][3])
                    .getOrCreate();
            long start = System.nanoTime();
            try {
                SparkFinetune.Result r = SparkFinetune.run(JavaSparkContext.fromSparkContext(spark.sparkContext()),
                        config);
                ms[i] = r.replicas().stream().mapToDouble(ReplicaStats::meanStepMillis).max().orElseThrow();
                perRank[i] = r.replicas().stream().map(x -> String.format(Locale.ROOT, "%.0f", x.meanStepMillis()))
                        .collect(java.util.stream.Collectors.joining(" / "));
                bytes[i] = r.leader().exchangedBytes() / r.leader().steps();
                wall[i] = (System.nanoTime() - start) / 1e9;
            } finally {
                spark.stop();
            }
            int global = Integer.parseInt(runs[i][1]) * Integer.parseInt(runs[i][2]);
            System.out.printf(Locale.ROOT, "| %s | %s | %s x %s | %.0f | %s | %.2f | %d | %.1f |%n", runs[i][0],
                    runs[i][3], runs[i][2], runs[i][1], ms[i], perRank[i], global * 1000.0 / ms[i], bytes[i], wall[i]);
        }
    }
}
