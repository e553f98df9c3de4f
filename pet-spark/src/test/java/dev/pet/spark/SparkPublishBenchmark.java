package dev.pet.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * What publishing the run directory to a Hadoop URI costs: the same local[2] run (2 replicas × batch 2, GPT-2 small
 * shape, LoRA r=8 on c_attn, sequence 64, 8 steps, a checkpoint every 2) with output_dir a local path and a
 * {@code file:} URI (through Hadoop's LocalFileSystem); then, isolated, one checkpoint's publish and fetch (with its
 * SHA-256 check), best of 5. Also each replica's mean gradient compute time from metrics.jsonl.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class SparkPublishBenchmark {
    @TempDir
    Path dir;

    @Test
    void localPathVersusFileUri() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, Files.readString(DataParallelFixtures.corpus(dir)).repeat(24));
        String model = System.getProperty("pet.bench.model", "gpt2");
        SparkSession spark = SparkSession.builder().master("local[2]").appName("pet-spark publish bench")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
        try {
            JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
            Path yaml = dir.resolve("run.yaml");
            Files.writeString(yaml, """
                    seed: 3
                    output_dir: unused
                    model:
                      model_config:
                        type: GPT2Config
                        checkpoint_name_or_path: %s
                        seq_length: 64
                        pet_config: {pet_type: lora, lora_rank: 8, lora_alpha: 16, target_modules: [c_attn]}
                      arch: {type: GPT2LMHeadModel}
                    runner_config: {epochs: 100, batch_size: 2, max_steps: 8, data_parallel: 2}
                    optimizer: {type: AdamW, max_grad_norm: 1.0}
                    lr_schedule: {type: constant, learning_rate: 1.0e-3}
                    train_dataset: {data_loader: {type: text, dataset_dir: %s}}
                    callbacks: {checkpoint_steps: 2, keep_checkpoints: 2, log_steps: 1}
                    """.formatted(model, corpus));
            Path local = dir.resolve("local");
            Path published = dir.resolve("published");
            System.out.println("| output_dir | stage wall s | ms/step (rank 0) | mean compute ms/step by rank |");
            for (String out : new String[] {local.toString(), published.toUri().toString()}) {
                RunConfig config = RunConfigLoader.load(yaml, List.of("output_dir=" + out));
                long start = System.nanoTime();
                SparkFinetune.Result r = SparkFinetune.run(sc, config);
                double wall = (System.nanoTime() - start) / 1e9;
                Path run = out.startsWith("file:") ? published : local;
                System.out.printf(Locale.ROOT, "| %s | %.1f | %.0f | %s |%n", out.startsWith("file:") ? "file: URI"
                        : "local path", wall, r.leader().meanStepMillis(), meanCompute(run));
            }
            Path checkpoint = published.resolve("checkpoint-8");
            long bytes;
            try (Stream<Path> files = Files.walk(checkpoint)) {
                bytes = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
            }
            HadoopRunDirectory target = HadoopRunDirectory.of(dir.resolve("copies").toUri(), new Configuration());
            double publish = Double.MAX_VALUE;
            double fetch = Double.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                long t0 = System.nanoTime();
                target.publish(checkpoint, "checkpoint-8");
                publish = Math.min(publish, (System.nanoTime() - t0) / 1e6);
                Path staging = dir.resolve("staging-" + i);
                String runId = new ObjectMapper().readTree(published.resolve("run.json").toFile()).path("run_id")
                        .asText();
                long t1 = System.nanoTime();
                List<String> problems = target.fetchCheckpoint("checkpoint-8", runId, staging);
                fetch = Math.min(fetch, (System.nanoTime() - t1) / 1e6);
                if (!problems.isEmpty()) {
                    throw new AssertionError(problems.toString());
                }
            }
            target.close();
            System.out.printf(Locale.ROOT, "checkpoint-8: %,d bytes; publish best %.1f ms, fetch + verify best %.1f ms%n",
                    bytes, publish, fetch);
        } finally {
            spark.stop();
        }
    }

    /** Each rank's mean of replica_compute_s over the logged steps, in ms. */
    private static String meanCompute(Path run) throws Exception {
        ObjectMapper json = new ObjectMapper();
        double[] sum = null;
        int n = 0;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode times = json.readTree(line).get("replica_compute_s");
            if (times == null) {
                continue;
            }
            if (sum == null) {
                sum = new double[times.size()];
            }
            for (int r = 0; r < sum.length; r++) {
                sum[r] += times.get(r).asDouble();
            }
            n++;
        }
        StringBuilder s = new StringBuilder();
        for (int r = 0; sum != null && r < sum.length; r++) {
            s.append(r == 0 ? "" : " / ").append(String.format(Locale.ROOT, "%.0f", 1000 * sum[r] / n));
        }
        return s.toString();
    }
}
