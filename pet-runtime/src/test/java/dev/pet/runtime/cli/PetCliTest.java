package dev.pet.runtime.cli;

import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.PetEngine;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.RunInfo;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingSummary;
import dev.pet.runtime.plugin.PluginJars;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PetCliTest {
    @TempDir
    Path dir;

    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final ByteArrayOutputStream err = new ByteArrayOutputStream();

    /** Records what the CLI hands the engine; drives two steps through the listener like a real run would. */
    static final class RecordingEngine implements PetEngine {
        final List<Object> calls = new ArrayList<>();

        @Override
        public TrainingSummary finetune(RunConfig config, RunEnvironment env) {
            calls.add(config);
            env.listener().onTrainingBegin(new RunInfo("m", "lora", 2, 0, 8));
            env.listener().onStep(new StepMetrics(1, 0, 3.0, 1e-3, 1, 8, 1000));
            env.listener().onStep(new StepMetrics(2, 0, 2.0, 1e-3, 1, 8, 1000));
            TrainingSummary summary = new TrainingSummary(2, 2.0, 16, Duration.ofMillis(5), TrainingSummary.StopReason.COMPLETED);
            env.listener().onTrainingEnd(summary);
            return summary;
        }

        @Override
        public EvalMetrics evaluate(dev.pet.runtime.EvalRequest request, RunEnvironment env) {
            calls.add(request);
            return new EvalMetrics(0, Math.log(20), 100);
        }

        @Override
        public List<Completion> generate(GenerateRequest request, RunEnvironment env, TextSink sink) {
            calls.add(request);
            List<Completion> out = new ArrayList<>();
            for (int i = 0; i < request.prompts().size(); i++) {
                sink.accept(i, " gener");
                sink.accept(i, "ated" + i);
                out.add(new Completion(" generated" + i, 2, 3, "length"));
            }
            sink.warning("prompt truncated");
            return out;
        }

        @Override
        public void export(ExportRequest request, RunEnvironment env) {
            calls.add(request);
        }

        @Override
        public dev.pet.runtime.serve.ServedModel openServed(RunConfig config, java.nio.file.Path adapters,
                RunEnvironment env) {
            throw new UnsupportedOperationException("not recorded");
        }

        @Override
        public ModelInspection inspect(RunConfig config, RunEnvironment env) {
            calls.add(config);
            return new ModelInspection(config.model().modelConfig().checkpointNameOrPath(), "lora", 1000, 10,
                    Map.of("MatMul", 4L, "Add", 2L));
        }
    }

    int run(PetEngine engine, String... args) {
        PetCli cli = new PetCli(() -> Optional.ofNullable(engine), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return cli.execute(args);
    }

    String stdout() {
        return out.toString(StandardCharsets.UTF_8);
    }

    String stderr() {
        return err.toString(StandardCharsets.UTF_8);
    }

    Path config(String extra) throws Exception {
        Path file = dir.resolve("run.yaml");
        Files.writeString(file, """
                output_dir: %s
                model:
                  model_config: {checkpoint_name_or_path: gpt2-tiny, seq_length: 32, pet_config: {pet_type: lora, lora_rank: 4}}
                runner_config: {batch_size: 8}
                eval_dataset: {data_loader: {type: text, dataset_dir: %s}}
                callbacks: {log_steps: 1}
                """.formatted(dir.resolve("out"), dir) + extra);
        return file;
    }

    @Test
    void dryRunPrintsTheResolvedConfigWithOverrides() throws Exception {
        int rc = run(null, "finetune", config("").toString(), "--dry-run", "--set", "runner_config.batch_size=2");
        assertEquals(0, rc, stderr());
        assertTrue(stdout().contains("batch_size: 2"), stdout());
        assertTrue(stdout().contains("pet_type: lora"), stdout());
        assertTrue(stdout().contains("lr_schedule:"), "defaults are shown: " + stdout());
    }

    @Test
    void configErrorsExitNonZeroWithOneLineAndNoStackTrace() throws Exception {
        int rc = run(null, "finetune", config("").toString(), "--set", "runner_config.batch_sise=2");
        assertEquals(2, rc);
        List<String> lines = stderr().lines().toList();
        assertEquals(1, lines.size(), stderr());
        assertTrue(lines.get(0).startsWith("error: runner_config.batch_sise: unknown key (value 2) (did you mean 'batch_size'?)"), lines.get(0));
        assertFalse(stderr().contains("\tat "));
    }

    @Test
    void aHadoopUriOutputDirIsRefusedOutsideSpark() throws Exception {
        RecordingEngine engine = new RecordingEngine();
        for (String command : new String[] {"finetune", "eval"}) {
            err.reset();
            int rc = run(engine, command, config("").toString(), "--set", "output_dir=hdfs://nn:8020/runs/a");
            assertEquals(2, rc, command);
            assertTrue(stderr().startsWith("error: output_dir: hdfs://nn:8020/runs/a is a Hadoop FileSystem URI: "
                    + "only a Spark run"), command + ": " + stderr());
        }
        assertTrue(engine.calls.isEmpty(), "nothing ran: " + engine.calls);
    }

    @Test
    void verboseAddsTheStackTrace() throws Exception {
        int rc = run(null, "--verbose", "finetune", config("").toString(), "--set", "runner_config.batch_sise=2");
        assertEquals(2, rc);
        assertTrue(stderr().contains("\tat dev.pet.runtime.config"), stderr());
    }

    @Test
    void missingConfigFileIsOneLine() {
        int rc = run(null, "finetune", dir.resolve("nope.yaml").toString());
        assertEquals(2, rc);
        assertTrue(stderr().startsWith("error: cannot read config " + dir.resolve("nope.yaml")), stderr());
        assertEquals(1, stderr().lines().count());
    }

    @Test
    void usageErrorsExitTwo() {
        assertEquals(2, run(null, "frobnicate"));
        assertTrue(stderr().startsWith("error: Unmatched argument"), stderr());
        assertEquals(0, run(null, "--help"));
        assertTrue(stdout().contains("finetune") && stdout().contains("plugins") && stdout().contains("report"), stdout());
    }

    @Test
    void engineCommandsWithoutAnEngineSaySo() throws Exception {
        int rc = run(null, "finetune", config("").toString());
        assertEquals(1, rc);
        assertEquals("error: 'pet finetune' needs the training engine, and none is installed in this build "
                + "(no dev.pet.runtime.PetEngine provider)", stderr().strip());
    }

    @Test
    void finetuneDelegatesWithListenersThatWriteMetrics() throws Exception {
        RecordingEngine engine = new RecordingEngine();
        int rc = run(engine, "finetune", config("").toString(), "--set", "seed=7");
        assertEquals(0, rc, stderr());
        RunConfig passed = (RunConfig) engine.calls.get(0);
        assertEquals(7, passed.seed());
        List<String> metrics = Files.readAllLines(dir.resolve("out/metrics.jsonl"));
        assertEquals(2, metrics.size());
        assertTrue(metrics.get(1).startsWith("{\"step\":2,\"epoch\":0,\"loss\":2.0"), metrics.get(1));
        assertTrue(stderr().contains("step 2/2  loss 2.0000"), "plain progress lines without a console: " + stderr());
    }

    @Test
    void evalGenerateExportInspectDelegate() throws Exception {
        RecordingEngine engine = new RecordingEngine();
        Path cfg = config("");
        assertEquals(0, run(engine, "eval", cfg.toString()), stderr());
        assertTrue(stdout().contains("perplexity 20.00"), stdout());
        assertEquals(0, run(engine, "generate", "--model", "gpt2-tiny", "-p", "Hello", "--max-new-tokens", "5"), stderr());
        GenerateRequest gen = (GenerateRequest) engine.calls.get(1);
        assertEquals(List.of("Hello"), gen.prompts());
        assertEquals(5, gen.maxNewTokens());
        assertEquals("gpt2-tiny", gen.config().model().modelConfig().checkpointNameOrPath());
        assertTrue(stdout().contains("Hello generated0\n"), "streamed after the prompt: " + stdout());
        assertTrue(stderr().contains("warning: prompt truncated"), stderr());
        assertEquals(0, run(engine, "export", cfg.toString(), "--format", "peft", "-o", dir.resolve("peft").toString()), stderr());
        ExportRequest export = (ExportRequest) engine.calls.get(2);
        assertEquals(ExportRequest.Format.PEFT, export.format());
        assertEquals(2, run(engine, "export", cfg.toString(), "--format", "tflite", "-o", "x"));
        assertTrue(stderr().contains("unknown export format 'tflite'"), stderr());
        assertEquals(0, run(engine, "inspect", "gpt2-tiny", "--pet", "lora"), stderr());
        RunConfig inspected = (RunConfig) engine.calls.get(3);
        assertEquals("lora", inspected.model().pet().petType());
        assertTrue(stdout().contains("trainable   10 (1.000%)"), stdout());
    }

    @Test
    void generateTakesSamplingOptionsAndABatchOfPrompts() throws Exception {
        RecordingEngine engine = new RecordingEngine();
        Path prompts = dir.resolve("prompts.txt");
        Files.writeString(prompts, "first\n\nsecond\n");
        assertEquals(0, run(engine, "generate", "--model", "gpt2-tiny", "--prompts", prompts.toString(),
                "--temperature", "0.7", "--top-k", "40", "--top-p", "0.9", "--repetition-penalty", "1.2", "--seed", "5",
                "--stop", ".", "--stop", "\n"), stderr());
        GenerateRequest gen = (GenerateRequest) engine.calls.get(0);
        assertEquals(List.of("first", "second"), gen.prompts());
        assertEquals(0.9, gen.topP());
        assertEquals(1.2, gen.repetitionPenalty());
        assertEquals(40, gen.topK());
        assertEquals(5, gen.seed());
        assertEquals(List.of(".", "\n"), gen.stop());
        assertTrue(stdout().contains("first generated0\n\nsecond generated1\n"), stdout());

        assertEquals(2, run(engine, "generate", "--model", "gpt2-tiny", "-p", "x", "--top-p", "0"));
        assertTrue(stderr().contains("--top-p"), stderr());
        assertEquals(2, run(engine, "generate", "--model", "gpt2-tiny"));
        assertTrue(stderr().contains("--prompt") && stderr().contains("--prompts"), stderr());
        assertEquals(2, run(engine, "generate", "--model", "gpt2-tiny", "--prompts", dir.resolve("none").toString()));
        assertTrue(stderr().contains("is not a file"), stderr());
    }

    @Test
    void pluginsListsClassPathAndPluginDirectoryProviders() throws Exception {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Path jar = PluginJars.modelProviderJar(dir, plugins.resolve("acme.jar"), "com.acme", "acme", "2.5.0");
        int rc = run(null, "plugins", "--plugins-dir", plugins.toString());
        assertEquals(0, rc, stderr());
        List<String> lines = stdout().lines().toList();
        assertTrue(lines.get(0).startsWith("KIND"), stdout());
        assertTrue(lines.stream().anyMatch(l -> l.matches("model\\s+acme\\s+2\\.5\\.0\\s+" + java.util.regex.Pattern.quote(jar.toString()))), stdout());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("model") && l.contains("classpath-test")), stdout());
    }

    @Test
    void reportDrawsThePng() throws Exception {
        Path outDir = Files.createDirectories(dir.resolve("run"));
        Files.writeString(outDir.resolve("metrics.jsonl"), "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"loss\":2.5}\n{\"step\":2,\"eval_loss\":2.7}\n");
        int rc = run(null, "report", outDir.toString(), "--width", "400", "--height", "300");
        assertEquals(0, rc, stderr());
        BufferedImage png = ImageIO.read(outDir.resolve("loss.png").toFile());
        assertEquals(400, png.getWidth());
        assertEquals(300, png.getHeight());
        assertEquals(2, run(null, "report", dir.resolve("empty-run").toString()));
        assertTrue(stderr().contains("empty-run does not exist; give an output_dir or its metrics.jsonl"), stderr());
    }

    /** Every command, including ones added later, as picocli sees them (the implicit 'help' included). */
    List<String> commands() {
        PetCli cli = new PetCli(Optional::empty, new PrintStream(out), new PrintStream(err));
        return List.copyOf(new picocli.CommandLine(cli).getSubcommands().keySet());
    }

    @Test
    void everyCommandAnswersHelpWithUsageOptionsDefaultsAndAnExample() {
        List<String> commands = commands();
        assertTrue(commands.containsAll(List.of("finetune", "eval", "generate", "export", "plugins", "inspect",
                "report", "completion", "help")), commands.toString());
        for (String command : commands) {
            out.reset();
            err.reset();
            assertEquals(0, run(null, command, "--help"), command + ": " + stderr());
            String help = stdout();
            assertTrue(help.startsWith("Usage: pet " + command) || command.equals("help") && help.contains("Usage: pet help"), command + ": " + help);
            assertTrue(help.contains("-h, --help"), command + " lists its options: " + help);
            if (!command.equals("help")) {
                assertTrue(help.matches("(?s).*Examples:\\n  pet " + command + ".*"), command + " has an example: " + help);
            }
            assertEquals("", stderr(), command);

            out.reset();
            assertEquals(0, run(null, "help", command), command + ": " + stderr());
            assertEquals(help, stdout(), "'pet help " + command + "' is the same as --help");
        }
    }

    @Test
    void helpShowsTheDefaults() {
        assertEquals(0, run(null, "generate", "--help"));
        assertTrue(stdout().matches("(?s).*--max-new-tokens=<maxNewTokens>\\s+Tokens to generate after the prompt\\.\\s+Default: 50.*"), stdout());
        assertTrue(stdout().contains("Default: 42"), stdout());
    }

    @Test
    void usageErrorsPointAtHelpThatWorks() {
        for (String[] args : List.of(new String[] {"finetune"}, new String[] {"generate", "conf/x.yaml"},
                new String[] {"plugins", "--frob"}, new String[] {"export", "x.yaml"})) {
            out.reset();
            err.reset();
            assertEquals(2, run(null, args), String.join(" ", args));
            String hint = stderr().lines().filter(l -> l.startsWith("usage: ")).findFirst().orElseThrow(
                    () -> new AssertionError("no usage hint: " + stderr()));
            assertEquals("usage: pet " + args[0] + " --help", hint);
            out.reset();
            assertEquals(0, run(null, hint.substring("usage: pet ".length()).split(" ")), hint + " works");
            assertTrue(stdout().startsWith("Usage: pet " + args[0]), stdout());
        }
    }

    @Test
    void completionPrintsABashScriptThatKnowsEveryCommand() {
        assertEquals(0, run(null, "completion"), stderr());
        String script = stdout();
        assertTrue(script.startsWith("#!/usr/bin/env bash"), script.substring(0, 80));
        assertTrue(script.contains("complete -F _complete_pet"), "registers itself for pet");
        for (String command : List.of("finetune", "generate", "report", "plugins")) {
            assertTrue(script.contains(command), command);
        }
        assertTrue(script.contains("--max-new-tokens"), "knows subcommand options");
    }

    @Test
    void versionNamesTheRuntime() {
        assertEquals(0, run(null, "--version"));
        assertTrue(stdout().startsWith("pet "), stdout());
    }

    @Test
    void relativePathsInAConfigResolveAgainstItsFolderNotTheWorkingDirectory() throws Exception {
        Path confDir = Files.createDirectories(dir.resolve("dist/conf"));
        Files.createDirectories(dir.resolve("dist/data"));
        Files.writeString(dir.resolve("dist/data/corpus.txt"), "some text");
        Path yaml = confDir.resolve("run.yaml");
        Files.writeString(yaml, """
                output_dir: ../output/run
                model: {model_config: {checkpoint_name_or_path: gpt2-tiny, pet_config: {pet_type: lora}}}
                train_dataset: {data_loader: {type: text, dataset_dir: ../data/corpus.txt}}
                """);
        RecordingEngine engine = new RecordingEngine();
        // The working directory of this JVM is the module folder, not dist/: the config still finds its data.
        assertEquals(0, run(engine, "finetune", yaml.toString(), "--set", "eval_dataset.data_loader.type=text",
                "--set", "eval_dataset.data_loader.dataset_dir=rel/valid.txt"), stderr());
        RunConfig passed = (RunConfig) engine.calls.get(0);
        assertEquals(dir.resolve("dist/output/run"), passed.outputDir());
        assertEquals(dir.resolve("dist/data/corpus.txt"), passed.trainDataset().datasetDir());
        assertEquals("gpt2-tiny", passed.model().modelConfig().checkpointNameOrPath(), "a preset name stays a name");
        assertEquals(Path.of("rel/valid.txt"), passed.evalDataset().datasetDir(), "--set paths are the caller's");
        assertTrue(Files.isRegularFile(dir.resolve("dist/output/run/metrics.jsonl")));
    }
}
