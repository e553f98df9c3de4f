package dev.pet.runtime.cli;

import dev.pet.api.AdapterFiles;
import dev.pet.runtime.EvalRequest;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.PetEngine;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;

import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.serve.CompletionServer;
import dev.pet.runtime.serve.ServeOptions;
import dev.pet.runtime.serve.ServedModel;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.JsonlMetricsWriter;
import dev.pet.runtime.metrics.LossCurvePlot;
import dev.pet.runtime.metrics.MicrometerListener;
import dev.pet.runtime.metrics.ProgressListener;
import dev.pet.runtime.metrics.PrometheusEndpoint;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.plugin.Plugin;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginFailure;
import dev.pet.runtime.plugin.PluginRegistry;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * The {@code pet} command line. Config handling, plugin listing and reports run here; commands that run models
 * delegate to the {@link PetEngine} found with {@link ServiceLoader} (or given by the embedding code). Errors print
 * one line and exit non-zero (2 for usage and config errors, 1 otherwise); {@code --verbose} adds the stack trace.
 * Every command answers {@code --help} and {@code pet help CMD}: the root command's attributes (help options,
 * defaults shown) are inherited by each subcommand, and each has an example in its footer.
 */
@Command(name = "pet", scope = CommandLine.ScopeType.INHERIT, mixinStandardHelpOptions = true,
        versionProvider = PetCli.Version.class, showDefaultValues = true, sortOptions = false,
        description = "Parameter-efficient fine-tuning of ONNX transformer models.",
        footerHeading = "%nExamples:%n",
        footer = {"  pet finetune conf/quickstart.yaml", "  pet help finetune",
                "  source <(pet completion)      # bash/zsh completion for this shell"},
        subcommands = {PetCli.Finetune.class, PetCli.Eval.class, PetCli.Generate.class, PetCli.Export.class,
                PetCli.Plugins.class, PetCli.Inspect.class, PetCli.Report.class, PetCli.Serve.class,
                PetCli.Completion.class, CommandLine.HelpCommand.class})
public final class PetCli implements Runnable {
    /** Plugin kinds listed and resolved by the CLI. */

    private final Supplier<Optional<PetEngine>> engines;
    private final PrintStream out;
    private final PrintStream err;

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT, description = "Show stack traces and debug logs.")
    boolean verbose;

    @Option(names = "--plugins-dir", scope = CommandLine.ScopeType.INHERIT, paramLabel = "DIR",
            description = "Directory of plugin jars/folders (default: $PET_HOME/plugins).")
    Path pluginsDir;

    public PetCli(Supplier<Optional<PetEngine>> engines, PrintStream out, PrintStream err) {
        this.engines = Objects.requireNonNull(engines, "engines");
        this.out = Objects.requireNonNull(out, "out");
        this.err = Objects.requireNonNull(err, "err");
    }

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        PetCli cli = new PetCli(PetCli::serviceEngine, System.out, System.err);
        System.exit(cli.execute(args));
    }

    /** The engine installed alongside the runtime, if any. */
    public static Optional<PetEngine> serviceEngine() {
        return ServiceLoader.load(PetEngine.class).findFirst();
    }

    /** Runs the command line and returns the exit code. */
    public int execute(String... args) {
        CommandLine cmd = new CommandLine(this);
        cmd.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
        cmd.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
        cmd.setCaseInsensitiveEnumValuesAllowed(true);
        cmd.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            err.println("error: " + oneLine(e));
            if (verbose) {
                e.printStackTrace(err);
            }
            return e instanceof ConfigException || e instanceof IllegalArgumentException ? 2 : 1;
        });
        cmd.setParameterExceptionHandler((e, args1) -> {
            err.println("error: " + e.getMessage());
            CommandLine.UnmatchedArgumentException.printSuggestions(e, new PrintWriter(err, true, StandardCharsets.UTF_8));
            err.println("usage: " + e.getCommandLine().getCommandSpec().qualifiedName() + " --help");
            return 2;
        });
        return cmd.execute(args);
    }

    private static String oneLine(Throwable e) {
        String message = e.getMessage();
        if (message == null || message.isBlank()) {
            message = e.getClass().getSimpleName();
        }
        return message.replace('\n', ' ');
    }

    @Override
    public void run() {
        new CommandLine(this).usage(out);
    }

    /** The version from the runtime JAR's manifest ({@code Implementation-Version}). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = PetCli.class.getPackage().getImplementationVersion();
            return new String[] {"pet " + (v == null ? "(development build)" : v),
                    "Java ${java.version} (${java.vendor}), ${os.name} ${os.arch}"};
        }
    }

    Path resolvedPluginsDir() {
        if (pluginsDir != null) {
            if (!Files.isDirectory(pluginsDir)) {
                throw new IllegalArgumentException("--plugins-dir " + pluginsDir + ": "
                        + (Files.exists(pluginsDir) ? "not a directory" : "no such directory"));
            }
            return pluginsDir;
        }
        String property = System.getProperty("pet.plugins.dir");
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        String home = System.getenv("PET_HOME");
        return home == null || home.isBlank() ? null : Path.of(home, "plugins");
    }

    PluginRegistry plugins() {
        return PluginRegistry.discover(PluginKind.ALL, PetCli.class.getClassLoader(), resolvedPluginsDir());
    }

    PetEngine engine(String command) {
        return engines.get().orElseThrow(() -> new IllegalStateException("'pet " + command
                + "' needs the training engine, and none is installed in this build (no dev.pet.runtime.PetEngine provider)"));
    }

    RunEnvironment environment(TrainingListener listener) {
        return new RunEnvironment(plugins(), listener, TokenCache.defaultCache(), out);
    }

    /** Options shared by commands that read a run config. */
    static class ConfigOptions {
        @Parameters(index = "0", paramLabel = "CONFIG", description = "Run config (YAML, MindFormers layout); "
                + "relative paths in it resolve against its own folder.")
        Path config;

        @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key (repeatable), "
                + "e.g. runner_config.batch_size=4; a relative path here is relative to the working directory.")
        List<String> overrides = new ArrayList<>();

        @Option(names = "--dry-run", description = "Validate the config, print it resolved, and stop.")
        boolean dryRun;

        RunConfig load() {
            RunConfig run = RunConfigLoader.load(config, overrides);
            run.requireLocalOutput();
            return run;
        }
    }

    @Command(name = "finetune", description = {"Fine-tune a model with a PET method as the config says.",
            "Writes metrics.jsonl, checkpoints and the adapter under output_dir; resume with resume_training: true."},
            footer = "  pet finetune conf/quickstart.yaml --set runner_config.epochs=3")
    static final class Finetune implements Callable<Integer> {
        @ParentCommand
        PetCli cli;
        @CommandLine.Mixin
        ConfigOptions options;

        @Option(names = "--overwrite", description = "Delete another run's checkpoints, adapter and metrics from "
                + "output_dir first (overwrite_output_dir: true).")
        boolean overwrite;

        @Override
        public Integer call() {
            if (overwrite) {
                options.overrides.add("overwrite_output_dir=true");
            }
            RunConfig config = options.load();
            if (options.dryRun) {
                cli.out.print(config.toYaml());
                return 0;
            }
            PetEngine engine = cli.engine("finetune");
            PrometheusEndpoint endpoint = config.callbacks().prometheusPort() >= 0
                    ? PrometheusEndpoint.start("127.0.0.1", config.callbacks().prometheusPort()) : null;
            try (JsonlMetricsWriter jsonl = new JsonlMetricsWriter(config.outputDir().resolve("metrics.jsonl"),
                    config.callbacks().logSteps())) {
                List<TrainingListener> listeners = new ArrayList<>(List.of(jsonl,
                        new ProgressListener(cli.err, System.console() != null, config.callbacks().logSteps())));
                if (endpoint != null) {
                    cli.err.println("Prometheus metrics at http://127.0.0.1:" + endpoint.port() + "/metrics");
                    listeners.add(new MicrometerListener(endpoint.registry()));
                }
                TrainingSummary summary = engine.finetune(config, cli.environment(new TrainingListeners(listeners)));
                return summary.reason() == TrainingSummary.StopReason.COMPLETED ? 0 : 1;
            } finally {
                if (endpoint != null) {
                    endpoint.close();
                }
            }
        }
    }

    @Command(name = "eval", description = "Loss and perplexity on the config's eval_dataset (a base model when the "
            + "config has no pet_config), or of --model (with --adapter) on --data; writes OUTPUT_DIR/eval_results.json.",
            footer = {"  pet eval run.yaml --set eval_dataset.data_loader.dataset_dir=data/valid.txt",
                    "  pet eval --model ./Qwen2.5-0.5B --adapter out/adapter --data data/valid.txt"})
    static final class Eval implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Parameters(index = "0", arity = "0..1", paramLabel = "CONFIG", description = "Run config whose model, "
                + "adapter and eval_dataset to use.", showDefaultValue = CommandLine.Help.Visibility.NEVER)
        Path config;

        @Option(names = "--model", paramLabel = "MODEL", description = "Model directory or preset, when no CONFIG is "
                + "given (the family from its config.json).")
        String model;

        @Option(names = "--adapter", paramLabel = "DIR", description = "Adapter directory (default: OUTPUT_DIR/adapter "
                + "with a CONFIG); without CONFIG its adapter_config.json says the PET method.")
        Path adapter;

        @Option(names = "--data", paramLabel = "FILE", description = "Eval corpus (a file or a folder), instead of "
                + "the config's eval_dataset.")
        Path data;

        @Option(names = "--data-type", paramLabel = "TYPE", defaultValue = "text",
                description = "Format of --data: wikitext, text, jsonl or tokens.")
        String dataType;

        @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key (repeatable).")
        List<String> overrides = new ArrayList<>();

        @Option(names = "--dry-run", description = "Validate the config, print it resolved, and stop.")
        boolean dryRun;

        @Override
        public Integer call() {
            List<String> all = new ArrayList<>();
            if (data != null) {
                all.add("eval_dataset.data_loader.type=" + quoted(dataType));
                all.add("eval_dataset.data_loader.dataset_dir=" + quoted(data.toString()));
            }
            all.addAll(overrides);
            RunConfig run = runConfig(config, model, adapter, all);
            if (run.evalDataset() == null) {
                throw new ConfigException("eval_dataset", "is required for pet eval (or give --data FILE)");
            }
            if (dryRun) {
                cli.out.print(run.toYaml());
                return 0;
            }
            EvalMetrics metrics = cli.engine("eval").evaluate(new EvalRequest(run, adapter),
                    cli.environment(new TrainingListener() {
                    }));
            cli.out.printf(Locale.ROOT, "eval loss %.4f  perplexity %.2f  (%d tokens); wrote %s%n", metrics.loss(),
                    metrics.perplexity(), metrics.tokens(), run.outputDir().resolve("eval_results.json"));
            return 0;
        }
    }

    @Command(name = "generate", description = "Generate text with a (fine-tuned) model.",
            footer = "  pet generate conf/quickstart.yaml --prompt \"The keeper\" --temperature 0.8 --top-k 40")
    static final class Generate implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Parameters(index = "0", arity = "0..1", paramLabel = "CONFIG", description = "Run config whose model and adapter to use.",
                showDefaultValue = CommandLine.Help.Visibility.NEVER)
        Path config;

        @Option(names = "--model", paramLabel = "MODEL", description = "Model directory or preset, when no CONFIG is given.")
        String model;

        @Option(names = "--adapter", paramLabel = "DIR", description = "Adapter directory (default: OUTPUT_DIR/adapter).")
        Path adapter;

        @CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
        PromptSource source;

        /** Exactly one of --prompt and --prompts. */
        static final class PromptSource {
            @Option(names = {"-p", "--prompt"}, required = true,
                    description = "Prompt text (its continuation streams to stdout).")
            String prompt;

            @Option(names = "--prompts", paramLabel = "FILE", required = true,
                    description = "One prompt per line, generated as one batch; completions are printed in order, "
                            + "separated by blank lines.")
            Path promptsFile;
        }

        @Option(names = "--max-new-tokens", defaultValue = "50", description = "Tokens to generate after the prompt.")
        int maxNewTokens;

        @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy.")
        double temperature;

        @Option(names = "--top-k", defaultValue = "0", description = "0 = no top-k filter.")
        int topK;

        @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling threshold; 1 = no filter.")
        double topP;

        @Option(names = "--repetition-penalty", defaultValue = "1", description = "1 = none; 1.2 discourages repeats.")
        double repetitionPenalty;

        @Option(names = "--seed", defaultValue = "42", description = "Sampling seed: the same seed gives the same text.")
        long seed;

        @Option(names = "--stop", paramLabel = "TEXT", description = "Stop before this text (repeatable).")
        List<String> stop = new ArrayList<>();

        @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key (repeatable).")
        List<String> overrides = new ArrayList<>();

        @Override
        public Integer call() throws java.io.IOException {
            String prompt = source.prompt;
            Path promptsFile = source.promptsFile;
            List<String> prompts;
            if (prompt != null) {
                prompts = List.of(prompt);
            } else {
                if (!Files.isRegularFile(promptsFile)) {
                    throw new IllegalArgumentException("--prompts " + promptsFile + " is not a file");
                }
                prompts = Files.readAllLines(promptsFile, StandardCharsets.UTF_8).stream()
                        .filter(l -> !l.isBlank()).toList();
                if (prompts.isEmpty()) {
                    throw new IllegalArgumentException("--prompts " + promptsFile + " has no prompts (one per line)");
                }
            }
            RunConfig run = runConfig(config, model, adapter, overrides);
            GenerateRequest request = new GenerateRequest(run, adapter, prompts, maxNewTokens, temperature, topK, topP,
                    repetitionPenalty, seed, stop);
            boolean stream = prompts.size() == 1;
            if (stream) {
                cli.out.print(prompts.get(0));
                cli.out.flush();
            }
            List<dev.pet.runtime.generate.Completion> done = cli.engine("generate").generate(request, cli.environment(new TrainingListener() {
            }), new TextSink() {
                @Override
                public boolean accept(int row, String delta) {
                    if (stream) {
                        cli.out.print(delta);
                        cli.out.flush();
                    }
                    return true;
                }

                @Override
                public void warning(String message) {
                    cli.err.println("warning: " + message);
                }
            });
            if (stream) {
                cli.out.println();
            } else {
                for (int i = 0; i < done.size(); i++) {
                    cli.out.println((i > 0 ? "\n" : "") + prompts.get(i) + done.get(i).text());
                }
            }
            return 0;
        }
    }

    @Command(name = "serve", description = "Serve completions over HTTP (OpenAI-compatible POST /v1/completions, "
            + "GET /v1/models, /health, /metrics) for one base model and its ONNX Runtime LoRA adapters.",
            footer = "  pet serve run.yaml --adapters exported-adapters/ --port 8000 --api-key-file key.txt")
    static final class Serve implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Parameters(index = "0", arity = "0..1", paramLabel = "CONFIG", description = "Run config naming the base model and PET method.")
        Path config;

        @Option(names = "--model", paramLabel = "MODEL", description = "Model directory or preset, when no CONFIG is given (no adapters).")
        String model;

        @Option(names = "--adapters", paramLabel = "DIR",
                description = "Directory of NAME.onnx_adapter files or NAME/ export directories (pet export --format ort-adapter).")
        Path adapters;

        @Option(names = "--host", defaultValue = "127.0.0.1", description = "Interface to bind (default: loopback only).")
        String host;

        @Option(names = "--port", defaultValue = "8000", description = "0 picks a free port.")
        int port;

        @Option(names = "--api-key-file", paramLabel = "FILE", description = "Require 'Authorization: Bearer <the file's content>'.")
        Path apiKeyFile;

        @Option(names = "--max-tokens", defaultValue = "256", description = "Largest max_tokens a request may ask for.")
        int maxTokens;

        @Option(names = "--max-body-bytes", defaultValue = "1048576")
        int maxBodyBytes;

        @Option(names = "--timeout", defaultValue = "60", paramLabel = "SECONDS", description = "Longest a completion may take.")
        int timeoutSeconds;

        @Option(names = "--read-timeout", defaultValue = "10", paramLabel = "SECONDS", description = "Longest a client may take to send a request.")
        int readTimeoutSeconds;

        @Option(names = "--max-concurrent", defaultValue = "2", description = "Completions generated at the same time.")
        int maxConcurrent;

        @Option(names = "--set", paramLabel = "KEY=VALUE")
        List<String> overrides = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            String key = null;
            if (apiKeyFile != null) {
                if (!Files.isRegularFile(apiKeyFile) || Files.size(apiKeyFile) > 4096) {
                    throw new IllegalArgumentException("--api-key-file " + apiKeyFile + " is not a file of at most 4 KiB");
                }
                key = Files.readString(apiKeyFile, StandardCharsets.UTF_8).trim();
                if (key.isEmpty()) {
                    throw new IllegalArgumentException("--api-key-file " + apiKeyFile + " is empty");
                }
            }
            ServeOptions options = new ServeOptions(host, port, key, maxTokens, maxBodyBytes,
                    java.time.Duration.ofSeconds(timeoutSeconds), java.time.Duration.ofSeconds(readTimeoutSeconds),
                    maxConcurrent, java.time.Duration.ofSeconds(30));
            RunConfig run = runConfig(config, model, overrides);
            ServedModel served = cli.engine("serve").openServed(run, adapters, cli.environment(new TrainingListener() {
            }));
            CompletionServer server;
            try {
                server = CompletionServer.start(served, options);
            } catch (RuntimeException e) {
                served.close();
                throw e;
            }
            java.util.concurrent.CountDownLatch stopped = new java.util.concurrent.CountDownLatch(1);
            Thread hook = new Thread(() -> {
                cli.err.println("stopping: finishing running completions");
                server.close();
                stopped.countDown();
            }, "pet-serve-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            cli.err.println("serving " + served.modelNames() + " at http://" + server.host() + ":" + server.port()
                    + "/v1/completions" + (key == null ? "" : " (bearer key required)"));
            stopped.await();
            return 0;
        }
    }

    /** {@link #runConfig(Path, String, Path, List)} without an adapter. */
    static RunConfig runConfig(Path config, String model, List<String> overrides) {
        return runConfig(config, model, null, overrides);
    }

    /**
     * A run config from a file, or a minimal one naming only the model; with an adapter directory and no file, the
     * PET method is the adapter's (its {@code adapter_config.json} {@code peft_type}, which names the algorithm as
     * its type or an alias; the adapter's own config then gives the method's options).
     */
    static RunConfig runConfig(Path config, String model, Path adapter, List<String> overrides) {
        if (config != null && model != null) {
            throw new IllegalArgumentException("give CONFIG or --model, not both");
        }
        if (config != null) {
            RunConfig run = RunConfigLoader.load(config, overrides);
            run.requireLocalOutput();
            return run;
        }
        if (model == null) {
            throw new IllegalArgumentException("give CONFIG or --model");
        }
        List<String> all = new ArrayList<>();
        all.add("model.model_config.checkpoint_name_or_path=" + quoted(model));
        if (adapter != null) {
            all.add("model.model_config.pet_config.pet_type="
                    + quoted(AdapterFiles.peftType(adapter).toLowerCase(Locale.ROOT)));
        }
        all.addAll(overrides);
        return RunConfigLoader.parse("{}", "--model " + model, all);
    }

    private static String quoted(String value) {
        return "'" + value.replace("'", "''") + "'";
    }

    @Command(name = "export", description = "Export a fine-tuned adapter: merged-onnx, peft or ort-adapter.",
            footer = "  pet export conf/quickstart.yaml --format merged-onnx -o model.onnx")
    static final class Export implements Callable<Integer> {
        @ParentCommand
        PetCli cli;
        @CommandLine.Mixin
        ConfigOptions options;

        @Option(names = "--format", required = true, paramLabel = "FORMAT", description = "merged-onnx, peft or ort-adapter.")
        String format;

        @Option(names = {"-o", "--output"}, required = true, paramLabel = "PATH",
                description = "Output file (merged-onnx) or directory (peft, ort-adapter).")
        Path output;

        @Option(names = "--from", paramLabel = "DIR", description = "Adapter or checkpoint directory (default: OUTPUT_DIR/adapter).")
        Path source;

        @Option(names = "--force", description = "Replace PATH if it exists.")
        boolean force;

        @Option(names = "--quantize", description = "merged-onnx: quantize the merged weights again with the run's "
                + "model.model_config.quantization (bits, block size, kernel; no copies for training).")
        boolean quantize;

        @Override
        public Integer call() {
            RunConfig config = options.load();
            ExportRequest request = new ExportRequest(config, source, ExportRequest.Format.parse(format), output,
                    force, quantize);
            if (options.dryRun) {
                cli.out.print(config.toYaml());
                return 0;
            }
            cli.engine("export").export(request, cli.environment(new TrainingListener() {
            }));
            cli.out.println("exported " + request.format().cliName() + " to " + output);
            return 0;
        }
    }

    @Command(name = "inspect", description = "Parameters, trainable parameters under the PET method, and ops of a model.",
            footer = {"  pet inspect conf/quickstart.yaml", "  pet inspect gpt2-tiny --pet lora"})
    static final class Inspect implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Parameters(index = "0", paramLabel = "CONFIG|MODEL", description = "A run config file, or a model directory/preset.")
        String target;

        @Option(names = "--pet", paramLabel = "TYPE", description = "PET method when inspecting a bare model (lora, prefix, adapter).")
        String pet;

        @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key (repeatable).")
        List<String> overrides = new ArrayList<>();

        @Override
        public Integer call() {
            Path asFile = Path.of(target);
            boolean isConfig = Files.isRegularFile(asFile)
                    && (target.endsWith(".yaml") || target.endsWith(".yml"));
            List<String> all = new ArrayList<>(overrides);
            if (pet != null) {
                all.add("model.model_config.pet_config.pet_type=" + quoted(pet));
            }
            RunConfig config = isConfig ? RunConfigLoader.load(asFile, all) : runConfig(null, target, all);
            ModelInspection report = cli.engine("inspect").inspect(config, cli.environment(new TrainingListener() {
            }));
            cli.out.printf(Locale.ROOT, "model       %s%npet         %s%nparameters  %,d%ntrainable   %,d (%.3f%%)%n",
                    report.model(), report.pet(), report.parameters(), report.trainableParameters(),
                    report.parameters() == 0 ? 0.0 : 100.0 * report.trainableParameters() / report.parameters());
            report.opCounts().entrySet().stream().sorted(Map.Entry.comparingByKey())
                    .forEach(e -> cli.out.printf(Locale.ROOT, "  %-24s %d%n", e.getKey(), e.getValue()));
            if (!report.anatomy().isEmpty()) {
                cli.out.println("anatomy");
                report.anatomy().forEach(line -> cli.out.println("  " + line.strip()));
            }
            if (!report.quantization().isEmpty()) {
                cli.out.println("quantization");
                report.quantization().forEach(line -> cli.out.println("  " + line.strip()));
            }
            return 0;
        }
    }

    @Command(name = "plugins", description = "List model and PET plugins with id, version and location.",
            footer = "  pet plugins --plugins-dir ./my-plugins")
    static final class Plugins implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Override
        public Integer call() {
            PluginRegistry registry = cli.plugins();
            List<Plugin<?>> all = registry.all();
            cli.out.printf(Locale.ROOT, "%-8s %-20s %-14s %s%n", "KIND", "ID", "VERSION", "LOCATION");
            for (Plugin<?> p : all) {
                cli.out.printf(Locale.ROOT, "%-8s %-20s %-14s %s%n", p.kind().name(), p.id(), p.version(), p.location());
            }
            for (PluginFailure f : registry.failures()) {
                cli.out.printf(Locale.ROOT, "%-8s %-20s %-14s %s%n", "BROKEN", "-", "-", f.location());
                cli.out.println("         error: " + f.error());
            }
            if (all.isEmpty() && registry.failures().isEmpty()) {
                cli.out.println("(no plugins found)");
            }
            return 0;
        }
    }

    @Command(name = "report", description = "Draw the train and eval loss curves of a run (metrics.jsonl) to a PNG.",
            footer = "  pet report output/quickstart --output loss.png")
    static final class Report implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @Parameters(index = "0", paramLabel = "RUN", description = "An output_dir or its metrics.jsonl.")
        Path run;

        @Option(names = {"-o", "--output"}, paramLabel = "PNG", description = "Default: next to metrics.jsonl, loss.png.")
        Path output;

        @Option(names = "--width", defaultValue = "1000", description = "Image width in pixels.")
        int width;

        @Option(names = "--height", defaultValue = "600", description = "Image height in pixels.")
        int height;

        @Override
        public Integer call() {
            Path metrics = Files.isDirectory(run) ? run.resolve("metrics.jsonl") : run;
            if (!Files.isRegularFile(metrics)) {
                throw new IllegalArgumentException(metrics + " does not exist; give an output_dir or its metrics.jsonl");
            }
            Path png = output != null ? output : metrics.toAbsolutePath().resolveSibling("loss.png");
            LossCurvePlot.render(metrics, png, width, height);
            cli.out.println("wrote " + png);
            return 0;
        }
    }

    @Command(name = "completion", description = {"Print a bash/zsh completion script for pet.",
            "Load it in the current shell, or save it where your shell reads completions."},
            footer = {"  pet completion > ~/.local/share/bash-completion/completions/pet",
                    "  source <(pet completion)      # this shell only"})
    static final class Completion implements Callable<Integer> {
        @ParentCommand
        PetCli cli;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            cli.out.print(picocli.AutoComplete.bash("pet", spec.root().commandLine()));
            return 0;
        }
    }
}
