package dev.pet.runtime;

import dev.pet.runtime.plugin.PluginKind;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.pet.api.PetException;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.JsonlMetricsWriter;
import dev.pet.runtime.train.Collective;
import dev.pet.runtime.train.DataParallelReplica;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The embedding API, mirroring MindFormers' {@code Trainer(task, model, pet_method, train_dataset).finetune()}:
 *
 * <pre>{@code
 * TrainingSummary s = Trainer.builder().task("text_generation").model("gpt2-tiny").petMethod("lora")
 *         .trainDataset(Path.of("corpus.txt")).build().finetune();
 * }</pre>
 *
 * or from a YAML run config ({@link #fromYaml}) or a {@link RunConfig}. Plugins are found on the class path and,
 * when given, in a plugins directory. Metrics go to {@code output_dir/metrics.jsonl} plus any added listener.
 */
public final class Trainer {
    private final RunConfig config;
    private final List<TrainingListener> listeners;
    private final Path pluginsDir;
    private final PetEngine engine;

    private Trainer(RunConfig config, List<TrainingListener> listeners, Path pluginsDir, PetEngine engine) {
        this.config = Objects.requireNonNull(config, "config");
        this.listeners = List.copyOf(listeners);
        this.pluginsDir = pluginsDir;
        this.engine = engine;
    }

    public static Trainer of(RunConfig config) {
        return new Trainer(config, List.of(), null, new DefaultPetEngine());
    }

    /** A trainer for a YAML run config, with {@code --set}-style overrides ({@code runner_config.epochs=2}). */
    public static Trainer fromYaml(Path yaml, String... overrides) {
        return of(RunConfigLoader.load(yaml, List.of(overrides)));
    }

    public static Builder builder() {
        return new Builder();
    }

    public RunConfig config() {
        return config;
    }

    /** A trainer that also reports to {@code listener} (metrics, progress, your own callbacks). */
    public Trainer withListener(TrainingListener listener) {
        List<TrainingListener> l = new ArrayList<>(listeners);
        l.add(Objects.requireNonNull(listener, "listener"));
        return new Trainer(config, l, pluginsDir, engine);
    }

    /** A trainer that also loads plugin JARs from {@code dir}, each in its own module layer. */
    public Trainer withPluginsDir(Path dir) {
        return new Trainer(config, listeners, dir, engine);
    }

    /** Fine-tunes (resuming when the config says so) and returns how the run ended. */
    public TrainingSummary finetune() {
        try (JsonlMetricsWriter jsonl = new JsonlMetricsWriter(config.outputDir().resolve("metrics.jsonl"),
                config.callbacks().logSteps())) {
            List<TrainingListener> all = new ArrayList<>(listeners);
            all.add(jsonl);
            return engine.finetune(config, environment(new TrainingListeners(all)));
        }
    }

    /**
     * Runs one replica of a data-parallel run ({@code runner_config.data_parallel} replicas, such as Spark barrier
     * tasks, each calling this with its {@link Collective}). Rank 0 writes the run directory and metrics and reports to
     * this trainer's listeners; the others only train.
     */
    public DataParallelReplica.Report finetuneReplica(Collective collective) {
        if (collective.rank() != 0) {
            return DataParallelReplica.run(config, environment(new TrainingListeners(List.of())), collective);
        }
        try (JsonlMetricsWriter jsonl = new JsonlMetricsWriter(config.outputDir().resolve("metrics.jsonl"),
                config.callbacks().logSteps())) {
            List<TrainingListener> all = new ArrayList<>(listeners);
            all.add(jsonl);
            return DataParallelReplica.run(config, environment(new TrainingListeners(all)), collective);
        }
    }

    /** Loss and perplexity on the eval dataset, with the run's final adapter when it exists. */
    public EvalMetrics evaluate() {
        return engine.evaluate(new EvalRequest(config, null), environment(new TrainingListeners(listeners)));
    }

    private RunEnvironment environment(TrainingListener listener) {
        PluginRegistry plugins = PluginRegistry.discover(PluginKind.ALL, Trainer.class.getClassLoader(),
                pluginsDir);
        return new RunEnvironment(plugins, listener, TokenCache.defaultCache(), new PrintStream(System.out, true));
    }

    /** Builds a run config from the seed's arguments; anything not set takes the YAML defaults. */
    public static final class Builder {
        private final Map<String, Object> root = new LinkedHashMap<>();
        private final Map<String, Object> modelConfig = new LinkedHashMap<>();
        private final Map<String, Object> petConfig = new LinkedHashMap<>();
        private final Map<String, Object> runner = new LinkedHashMap<>();
        private final Map<String, Object> lr = new LinkedHashMap<>();
        private final Map<String, Object> train = new LinkedHashMap<>();
        private final Map<String, Object> eval = new LinkedHashMap<>();

        private Builder() {
            modelConfig.put("type", "GPT2Config");
        }

        /** Only {@code text_generation} (causal language modelling) is supported. */
        public Builder task(String task) {
            if (!task.equals("text_generation")) {
                throw new PetException("unsupported task '" + task + "'; supported: text_generation");
            }
            return this;
        }

        /** A preset ({@code gpt2-tiny}, {@code gpt2}) or a Hugging Face model directory. */
        public Builder model(String nameOrPath) {
            modelConfig.put("checkpoint_name_or_path", nameOrPath);
            return this;
        }

        public Builder petMethod(String petType) {
            petConfig.put("pet_type", petType);
            return this;
        }

        /** Algorithm options ({@code lora_rank}, {@code target_modules}, ...). */
        public Builder petConfig(Map<String, Object> options) {
            petConfig.putAll(options);
            return this;
        }

        /**
         * Quantizes the frozen linear weights, as {@code model.model_config.quantization} does: {@code bits} (4, 8),
         * {@code block_size} (32, 64, 128), {@code symmetric}, {@code compute} ({@code fp32}, {@code int8}),
         * {@code kernel} ({@code matmul_nbits}, {@code dequantize}, {@code matmul_integer}: 8 bits, one scale per
         * output channel, no block_size), {@code include}, {@code exclude},
         * {@code lm_head} (also the output head; default false), {@code embeddings} (also the token-embedding
         * table; default false); omitted keys
         * take {@link dev.pet.onnx.quant.QuantSpec#defaults()}.
         */
        public Builder quantization(Map<String, Object> options) {
            modelConfig.put("quantization", new LinkedHashMap<>(options));
            return this;
        }

        public Builder seqLength(int seqLength) {
            modelConfig.put("seq_length", seqLength);
            return this;
        }

        /** A text file or directory of .txt files; see {@link #dataLoader} for other formats. */
        public Builder trainDataset(Path path) {
            train.put("dataset_dir", path.toString());
            return this;
        }

        public Builder evalDataset(Path path) {
            eval.put("dataset_dir", path.toString());
            return this;
        }

        /** {@code text} (default), {@code wikitext}, {@code jsonl} or {@code tokens}. */
        public Builder dataLoader(String type) {
            train.put("type", type);
            eval.put("type", type);
            return this;
        }

        public Builder outputDir(Path dir) {
            root.put("output_dir", dir.toString());
            return this;
        }

        /** Lets a fresh run delete another run's checkpoints, adapter and metrics from the output directory first. */
        public Builder overwriteOutputDir(boolean overwrite) {
            root.put("overwrite_output_dir", overwrite);
            return this;
        }

        public Builder seed(long seed) {
            root.put("seed", seed);
            return this;
        }

        public Builder epochs(int epochs) {
            runner.put("epochs", epochs);
            return this;
        }

        public Builder batchSize(int batchSize) {
            runner.put("batch_size", batchSize);
            return this;
        }

        public Builder maxSteps(long maxSteps) {
            runner.put("max_steps", maxSteps);
            return this;
        }

        public Builder learningRate(double rate) {
            lr.put("learning_rate", rate);
            return this;
        }

        public Trainer build() {
            if (!modelConfig.containsKey("checkpoint_name_or_path")) {
                throw new PetException("Trainer.builder(): model(...) is required");
            }
            if (!petConfig.containsKey("pet_type")) {
                throw new PetException("Trainer.builder(): petMethod(...) is required");
            }
            if (!train.containsKey("dataset_dir")) {
                throw new PetException("Trainer.builder(): trainDataset(...) is required");
            }
            train.putIfAbsent("type", "text");
            Map<String, Object> tree = new LinkedHashMap<>(root);
            Map<String, Object> mc = new LinkedHashMap<>(modelConfig);
            mc.put("pet_config", petConfig);
            tree.put("model", Map.of("model_config", mc, "arch", Map.of("type", "GPT2LMHeadModel")));
            if (!runner.isEmpty()) {
                tree.put("runner_config", runner);
            }
            if (!lr.isEmpty()) {
                tree.put("lr_schedule", lr);
            }
            tree.put("train_dataset", Map.of("data_loader", train));
            if (eval.containsKey("dataset_dir")) {
                eval.putIfAbsent("type", train.get("type"));
                tree.put("eval_dataset", Map.of("data_loader", eval));
            }
            try {
                String yaml = new ObjectMapper(new YAMLFactory()).writeValueAsString(tree);
                return of(RunConfigLoader.parse(yaml, "Trainer.builder()", List.of()));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new PetException("cannot build the run config: " + e.getMessage(), e);
            }
        }
    }
}
