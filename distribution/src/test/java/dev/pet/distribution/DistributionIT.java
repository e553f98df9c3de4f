package dev.pet.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the packaged {@code bin/pet} as a user would. */
class DistributionIT {
    static Path home;

    @TempDir
    Path tmp;

    @BeforeAll
    static void home() {
        home = Path.of(System.getProperty("pet.home"));
        assertTrue(Files.isExecutable(home.resolve("bin/pet")), "bin/pet is executable in " + home);
    }

    record Run(int exit, String out) {
    }

    static Run pet(Path petHome, Path cwd, String... args) throws Exception {
        return pet(Map.of(), petHome, cwd, args);
    }

    /** Runs {@code bin/pet} with {@code env} added to the environment (the build's sets {@code PET_CDS=off}). */
    static Run pet(Map<String, String> env, Path petHome, Path cwd, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(petHome.resolve("bin/pet").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor(), out);
    }

    static List<String> files(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (var s = Files.list(dir)) {
            return s.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * The launcher's class-data archive (AppCDS): a first run that fails (here: stopped by SIGTERM) leaves none and
     * keeps its exit status and signal handling although it is not exec'd on Java 17; the first successful run writes
     * one; the next run maps classes from it; a damaged one is replaced without a crash or a message. The JVM's CDS
     * messages would go to stdout, so no run may show any.
     */
    @Test
    void theClassDataArchiveIsWrittenOnceThenUsedAndADamagedOneIsReplaced() throws Exception {
        Path cache = tmp.resolve("cache");
        Path archives = cache.resolve("pet");
        Map<String, String> env = Map.of("XDG_CACHE_HOME", cache.toString(), "PET_CDS", "on");

        ProcessBuilder serve = new ProcessBuilder(home.resolve("bin/pet").toString(), "serve", "--model", "gpt2-tiny",
                "--port", "0").directory(tmp.toFile()).redirectErrorStream(true).redirectOutput(tmp.resolve("serve.log")
                .toFile());
        serve.environment().putAll(env);
        Process p = serve.start();
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(tmp.resolve("serve.log")).contains("/v1/completions") && p.isAlive()
                && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(p.isAlive(), "serving: " + Files.readString(tmp.resolve("serve.log")));
        List<ProcessHandle> jvm = p.descendants().toList();
        p.destroy(); // SIGTERM to the launcher, which passes it on
        assertEquals(143, p.waitFor(), "the JVM's exit status for SIGTERM: " + Files.readString(tmp.resolve("serve.log")));
        assertTrue(jvm.stream().noneMatch(ProcessHandle::isAlive), "the JVM stopped with the launcher");
        assertEquals(List.of(), files(archives), "an unsuccessful run leaves no archive, nor its temporary file");

        Run first = pet(env, home, tmp, "plugins");
        assertEquals(0, first.exit(), first.out());
        assertFalse(first.out().contains("[cds"), first.out());
        List<String> written = files(archives);
        assertEquals(1, written.size(), written.toString());
        assertTrue(written.get(0).matches("pet-\\d+-\\d+(-\\d+)?\\.jsa"), written.toString());

        Map<String, String> logged = new java.util.HashMap<>(env);
        logged.put("PET_OPTS", "-Xlog:class+load");
        Run second = pet(logged, home, tmp, "plugins");
        assertEquals(0, second.exit(), second.out());
        assertTrue(second.out().contains("source: shared objects file (top)"), "classes come from the archive: "
                + second.out());
        assertEquals(written, files(archives), "the archive is reused, not written again");

        // Damaged in the middle, size unchanged (the header still reads as valid).
        Path archive = archives.resolve(written.get(0));
        archive.toFile().setWritable(true);
        try (var f = new java.io.RandomAccessFile(archive.toFile(), "rw")) {
            f.seek(f.length() / 2);
            f.write(new byte[64 * 1024]);
        }
        Run damaged = pet(logged, home, tmp, "plugins");
        assertEquals(0, damaged.exit(), damaged.out());
        assertFalse(damaged.out().contains("source: shared objects file (top)"), damaged.out());
        assertFalse(damaged.out().contains("[cds") || damaged.out().contains("fatal error"), damaged.out());
        List<String> rewritten = files(archives);
        assertEquals(1, rewritten.size(), rewritten.toString());
        assertNotEquals(written, rewritten, "the damaged archive was replaced");
    }

    @Test
    void listsTheBundledPluginsWithVersionAndLocation() throws Exception {
        Run r = pet(home, home, "plugins");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().matches("(?s).*model\\s+gpt2\\s+0\\.1\\.0-SNAPSHOT\\s+\\S*plugins/models-gpt2.*"), r.out());
        assertTrue(r.out().matches("(?s).*model\\s+llama\\s+0\\.1\\.0-SNAPSHOT\\s+\\S*plugins/models-llama.*"), r.out());
        assertTrue(r.out().matches("(?s).*pet\\s+lora\\s+0\\.1\\.0-SNAPSHOT\\s+\\S*plugins/pet-lora.*"), r.out());
    }

    @Test
    void aThirdPartyPluginDroppedIntoPluginsIsListedAndUsed() throws Exception {
        // A copy of the distribution whose plugins/ gets one more JAR, compiled here against the shipped API.
        Path copy = tmp.resolve("pet");
        Files.createDirectories(copy.resolve("bin"));
        Files.copy(home.resolve("bin/pet"), copy.resolve("bin/pet"));
        Files.createSymbolicLink(copy.resolve("lib"), home.resolve("lib"));
        Files.createSymbolicLink(copy.resolve("conf"), home.resolve("conf"));
        Files.createDirectories(copy.resolve("plugins"));
        Path src = tmp.resolve("src/com/acme/AcmeProvider.java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, """
                package com.acme;
                public final class AcmeProvider implements dev.pet.api.ModelProvider {
                    public String id() { return "acme"; }
                    public java.util.Set<String> aliases() { return java.util.Set.of("acme-tiny"); }
                    public dev.pet.api.PretrainedModel load(dev.pet.api.ModelRequest r) {
                        throw new dev.pet.api.PetException("acme plugin asked to load " + r.nameOrPath());
                    }
                }
                """);
        Path classes = Files.createDirectories(tmp.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        String cp = String.join(File.pathSeparator, List.of(home.resolve("lib/pet-api-0.1.0-SNAPSHOT.jar").toString(),
                home.resolve("lib/pet-onnx-0.1.0-SNAPSHOT.jar").toString()));
        assertEquals(0, javac.run(null, null, null, "-d", classes.toString(), "-cp", cp, src.toString()));
        try (OutputStream f = Files.newOutputStream(copy.resolve("plugins/acme-model.jar"));
                JarOutputStream jar = new JarOutputStream(f)) {
            jar.putNextEntry(new JarEntry("com/acme/AcmeProvider.class"));
            jar.write(Files.readAllBytes(classes.resolve("com/acme/AcmeProvider.class")));
            jar.putNextEntry(new JarEntry("META-INF/services/dev.pet.api.ModelProvider"));
            jar.write("com.acme.AcmeProvider\n".getBytes(StandardCharsets.UTF_8));
        }
        Run list = pet(copy, copy, "plugins");
        assertEquals(0, list.exit(), list.out());
        assertTrue(list.out().matches("(?s).*model\\s+acme\\s+.*plugins/acme-model\\.jar.*"), list.out());

        Path yaml = tmp.resolve("acme.yaml");
        Files.writeString(yaml, """
                output_dir: %s
                model: {model_config: {type: AcmeConfig, checkpoint_name_or_path: acme-tiny, pet_config: {pet_type: lora}}}
                train_dataset: {data_loader: {type: text, dataset_dir: %s}}
                """.formatted(tmp.resolve("out"), home.resolve("data/lighthouse.txt")));
        Run use = pet(copy, copy, "inspect", yaml.toString());
        assertNotEquals(0, use.exit());
        assertTrue(use.out().contains("acme plugin asked to load acme-tiny"), use.out());
    }

    @Test
    void quickstartConfigResolves() throws Exception {
        Run r = pet(home, home, "finetune", "conf/quickstart.yaml", "--dry-run");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("checkpoint_name_or_path: " + home.toAbsolutePath().normalize()
                .resolve("models/keeper-base")), r.out());
    }

    @Test
    void llamaQuickstartLoadsThroughTheLlamaPlugin() throws Exception {
        Run r = pet(home, home, "inspect", "conf/quickstart-llama.yaml");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("llama-tiny") && r.out().contains("Gemm") && r.out().contains("Cos"), r.out());
    }

    @Test
    void theQuickstartConfigWorksFromAnyWorkingDirectory() throws Exception {
        // Its paths are relative to conf/, not to the working directory (here: a temp folder).
        Run r = pet(home, tmp, "finetune", home.resolve("conf/quickstart.yaml").toString(), "--dry-run");
        assertEquals(0, r.exit(), r.out());
        Path dist = home.toAbsolutePath().normalize();
        assertTrue(r.out().contains("dataset_dir: " + dist.resolve("data/lighthouse.txt")), r.out());
        assertTrue(r.out().contains("output_dir: " + dist.resolve("output/quickstart")), r.out());
    }

    @Test
    void everyCommandAnswersHelpThroughTheLauncher() throws Exception {
        for (String command : List.of("finetune", "eval", "generate", "export", "plugins", "inspect", "report",
                "completion")) {
            Run help = pet(home, tmp, command, "--help");
            assertEquals(0, help.exit(), help.out());
            assertTrue(help.out().startsWith("Usage: pet " + command), help.out());
            Run viaHelp = pet(home, tmp, "help", command);
            assertEquals(help, viaHelp);
        }
        Run missing = pet(home, tmp, "finetune");
        assertEquals(2, missing.exit());
        assertTrue(missing.out().contains("usage: pet finetune --help"), missing.out());
    }

    @Test
    void completionScriptLoadsInBash() throws Exception {
        Run script = pet(home, tmp, "completion");
        assertEquals(0, script.exit(), script.out());
        Path file = tmp.resolve("pet-completion.bash");
        Files.writeString(file, script.out());
        Process bash = new ProcessBuilder("bash", "-c", "source " + file + " && complete -p pet")
                .redirectErrorStream(true).start();
        String out = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, bash.waitFor(), out);
        assertTrue(out.contains("_complete_pet"), out);
    }

    @Test
    void aBadConfigGivesOneClearLineAndNoStackTrace() throws Exception {
        Path bad = tmp.resolve("bad.yaml");
        Files.writeString(bad, "model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}\n"
                + "runner_config: {batch_sise: 4}\n");
        Run r = pet(home, home, "finetune", bad.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.out().contains("runner_config.batch_sise"), r.out());
        assertFalse(r.out().contains("\tat "), "no stack trace: " + r.out());
    }

    static String run(Path out, Path corpus, boolean resume) {
        return """
                seed: 9
                output_dir: %s
                resume_training: %s
                model:
                  model_config: {type: GPT2Config, checkpoint_name_or_path: gpt2-tiny, seq_length: 16,
                                 pet_config: {pet_type: lora, lora_rank: 4, lora_alpha: 8, lora_dropout: 0.1}}
                runner_config: {epochs: 1000, batch_size: 2, max_steps: 400}
                optimizer: {type: AdamW, weight_decay: 0.01, max_grad_norm: 1.0}
                lr_schedule: {type: cosine, learning_rate: 3.0e-3, warmup_steps: 5}
                train_dataset: {data_loader: {type: text, dataset_dir: %s, shuffle: true}}
                callbacks: {checkpoint_steps: 20, keep_checkpoints: 2}
                """.formatted(out, resume, corpus);
    }

    static boolean pastCheckpoint(Path out, int step) throws IOException {
        if (!Files.isDirectory(out)) {
            return false;
        }
        try (var s = Files.list(out)) {
            return s.map(f -> f.getFileName().toString()).filter(n -> n.matches("checkpoint-\\d+"))
                    .anyMatch(n -> Integer.parseInt(n.substring(11)) >= step);
        }
    }

    @Test
    void killNineThenResumeGivesTheSameAdapterAsAnUninterruptedRun() throws Exception {
        Path corpus = home.resolve("data/lighthouse.txt");
        Path full = tmp.resolve("full");
        Files.createDirectories(full);
        Files.writeString(full.resolve("run.yaml"), run(full.resolve("out"), corpus, false));
        Run done = pet(home, tmp, "finetune", full.resolve("run.yaml").toString());
        assertEquals(0, done.exit(), done.out());

        Path killed = tmp.resolve("killed");
        Files.createDirectories(killed);
        Files.writeString(killed.resolve("run.yaml"), run(killed.resolve("out"), corpus, false));
        Process p = new ProcessBuilder(home.resolve("bin/pet").toString(), "finetune",
                killed.resolve("run.yaml").toString()).directory(tmp.toFile()).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("killed.log").toFile()).start();
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!pastCheckpoint(killed.resolve("out"), 60) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "still training when killed: " + Files.readString(tmp.resolve("killed.log")));
        p.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly(); // SIGKILL: no shutdown hook runs, no final checkpoint
        p.waitFor();
        assertFalse(Files.exists(killed.resolve("out/adapter")), "killed before the end");

        Files.writeString(killed.resolve("run.yaml"), run(killed.resolve("out"), corpus, true));
        Run resumed = pet(home, tmp, "finetune", killed.resolve("run.yaml").toString());
        assertEquals(0, resumed.exit(), resumed.out());
        assertTrue(resumed.out().contains("400"), resumed.out());
        assertTrue(resumed.out().contains("was still claimed by a run that is gone (pid " + p.pid() + ", since "),
                "the killed run's lock is reported: " + resumed.out());
        org.junit.jupiter.api.Assertions.assertArrayEquals(
                Files.readAllBytes(full.resolve("out/adapter/adapter_model.safetensors")),
                Files.readAllBytes(killed.resolve("out/adapter/adapter_model.safetensors")),
                "the resumed run's final adapter is byte-identical to the uninterrupted run's");
    }

    @Test
    void sigtermWritesACheckpointBeforeExiting() throws Exception {
        Path corpus = home.resolve("data/lighthouse.txt");
        Path run = tmp.resolve("term");
        Files.createDirectories(run);
        // No periodic checkpoints: any checkpoint after SIGTERM was written by the shutdown path.
        Files.writeString(run.resolve("run.yaml"), run(run.resolve("out"), corpus, false)
                .replace("checkpoint_steps: 20", "checkpoint_steps: 100000, log_steps: 10"));
        Path log = tmp.resolve("term.log");
        Process p = new ProcessBuilder(home.resolve("bin/pet").toString(), "finetune",
                run.resolve("run.yaml").toString()).directory(tmp.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(log).contains("step 20/") && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "still training: " + Files.readString(log));
        p.destroy(); // SIGTERM
        assertNotEquals(0, p.waitFor(), "an interrupted run does not report success");
        try (var s = Files.list(run.resolve("out"))) {
            List<String> checkpoints = s.map(f -> f.getFileName().toString())
                    .filter(n -> n.matches("checkpoint-\\d+")).toList();
            assertEquals(1, checkpoints.size(), "one checkpoint, from the shutdown hook: " + checkpoints);
            assertTrue(Integer.parseInt(checkpoints.get(0).substring(11)) >= 20, checkpoints.toString());
        }
        assertFalse(Files.exists(run.resolve("out/adapter")), "no final adapter for an interrupted run");
    }

    @Test
    void twoRunsIntoOneDirectoryTheSecondIsRefusedNamingTheFirstsPid() throws Exception {
        Path corpus = home.resolve("data/lighthouse.txt");
        Path dir = Files.createDirectories(tmp.resolve("shared"));
        Files.writeString(dir.resolve("run.yaml"), run(dir.resolve("out"), corpus, false)
                .replace("checkpoint_steps: 20", "checkpoint_steps: 100000, log_steps: 1"));
        Path log = tmp.resolve("first.log");
        Process first = new ProcessBuilder(home.resolve("bin/pet").toString(), "finetune",
                dir.resolve("run.yaml").toString()).directory(tmp.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (!Files.readString(log).contains("step 1/") && first.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertTrue(first.isAlive(), "first run training: " + Files.readString(log));
            Run second = pet(home, tmp, "finetune", dir.resolve("run.yaml").toString());
            assertEquals(1, second.exit(), second.out());
            assertTrue(second.out().contains("error: output_dir " + dir.resolve("out") + " is in use by another run (pid "
                    + first.pid() + ", since "), second.out());
            Run overwrite = pet(home, tmp, "finetune", dir.resolve("run.yaml").toString(), "--overwrite");
            assertEquals(1, overwrite.exit(), "--overwrite never breaks a held lock: " + overwrite.out());
        } finally {
            first.destroy();
            first.waitFor();
        }
        assertFalse(Files.readString(log).contains("\tat "), "no stack trace: " + Files.readString(log));

        // The first run is gone (SIGTERM wrote a checkpoint): a fresh run over it is refused, --overwrite proceeds.
        Run fresh = pet(home, tmp, "finetune", dir.resolve("run.yaml").toString(), "--set", "runner_config.max_steps=3");
        assertEquals(2, fresh.exit(), fresh.out());
        assertTrue(fresh.out().contains("error: output_dir: " + dir.resolve("out") + " holds another run ("),
                fresh.out());
        assertTrue(fresh.out().contains("--overwrite"), fresh.out());
        Run overwrite = pet(home, tmp, "finetune", dir.resolve("run.yaml").toString(), "--set",
                "runner_config.max_steps=3", "--overwrite");
        assertEquals(0, overwrite.exit(), overwrite.out());
        try (var s = Files.list(dir.resolve("out"))) {
            assertEquals(List.of(".pet.lock", "adapter", "checkpoint-3", "metrics.jsonl", "run.json"),
                    s.map(f -> f.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void aBrokenPluginJarIsListedWithItsCauseAndTheOthersKeepWorking() throws Exception {
        Path copy = tmp.resolve("pet-broken");
        Files.createDirectories(copy.resolve("bin"));
        Files.copy(home.resolve("bin/pet"), copy.resolve("bin/pet"));
        Files.createSymbolicLink(copy.resolve("lib"), home.resolve("lib"));
        Files.createSymbolicLink(copy.resolve("conf"), home.resolve("conf"));
        Files.createSymbolicLink(copy.resolve("data"), home.resolve("data"));
        Files.createSymbolicLink(copy.resolve("models"), home.resolve("models")); // the quickstart's base model
        Path plugins = Files.createDirectories(copy.resolve("plugins"));
        try (var s = Files.list(home.resolve("plugins"))) {
            for (Path jar : s.toList()) {
                Files.createSymbolicLink(plugins.resolve(jar.getFileName()), jar);
            }
        }
        try (OutputStream f = Files.newOutputStream(plugins.resolve("acme-broken.jar"));
                JarOutputStream jar = new JarOutputStream(f)) {
            jar.putNextEntry(new JarEntry("META-INF/services/dev.pet.api.ModelProvider"));
            jar.write("com.acme.Missing\n".getBytes(StandardCharsets.UTF_8));
        }
        Run list = pet(copy, copy, "plugins");
        assertEquals(0, list.exit(), list.out());
        assertTrue(list.out().matches("(?s).*pet\\s+lora\\s+.*"), "the good plugins are listed: " + list.out());
        assertTrue(list.out().matches("(?s).*BROKEN\\s+-\\s+-\\s+\\S*plugins/acme-broken\\.jar.*"), list.out());
        assertTrue(list.out().contains("com.acme.Missing"), "the cause, without --verbose: " + list.out());
        assertFalse(list.out().contains("explicit plugin modules need"), list.out());
        assertFalse(list.out().contains("\tat "), list.out());

        Run inspect = pet(copy, copy, "inspect", "conf/quickstart.yaml");
        assertEquals(0, inspect.exit(), "other commands keep working: " + inspect.out());
        assertTrue(inspect.out().contains("plugin " + plugins.resolve("acme-broken.jar") + " is broken and was skipped"),
                inspect.out());

        Run missing = pet(copy, copy, "--plugins-dir", "/nonexistent", "plugins");
        assertEquals(2, missing.exit(), missing.out());
        assertTrue(missing.out().contains("error: --plugins-dir /nonexistent: no such directory"), missing.out());
    }

    /**
     * {@code pet serve} through the launcher: it announces its address, answers an OpenAI-style completion for the base
     * model, and stops on SIGTERM.
     */
    @Test
    void serveAnswersACompletionThroughTheLauncher() throws Exception {
        Process p = new ProcessBuilder(home.resolve("bin/pet").toString(), "serve", "--model", "gpt2-tiny", "--port",
                "0").directory(tmp.toFile()).redirectErrorStream(true).start();
        try {
            java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8));
            String url = null;
            StringBuilder log = new StringBuilder();
            for (String line; url == null && (line = out.readLine()) != null; ) {
                log.append(line).append('\n');
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("at (http://\\S+/v1/completions)")
                        .matcher(line);
                if (m.find()) {
                    url = m.group(1);
                }
            }
            assertTrue(url != null, "no address announced: " + log);
            java.net.HttpURLConnection c = (java.net.HttpURLConnection) new java.net.URL(url).openConnection();
            c.setRequestMethod("POST");
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json");
            try (OutputStream body = c.getOutputStream()) {
                body.write("{\"model\": \"gpt2-tiny\", \"prompt\": \"The keeper\", \"max_tokens\": 3}"
                        .getBytes(StandardCharsets.UTF_8));
            }
            assertEquals(200, c.getResponseCode());
            String answer = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(answer.contains("\"text\"") && answer.contains("\"object\":\"text_completion\""), answer);
        } finally {
            p.destroy(); // SIGTERM: the shutdown hook stops the server
            assertTrue(p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "pet serve stops on SIGTERM");
        }
    }
}
