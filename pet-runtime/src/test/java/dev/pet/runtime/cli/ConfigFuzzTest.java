package dev.pet.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfigLoader;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of YAML run configs as {@code pet finetune --dry-run} reads them: keys renamed, dropped and
 * duplicated, values replaced by other types and absurd numbers, YAML syntax broken, files cut short. Every case must
 * end as success or a {@link ConfigException} (the CLI's one line and exit code 2) with a message that is not a bare
 * exception, never another exception, a hang (each case has a deadline) or an OutOfMemoryError. A few cases go
 * through the CLI itself to pin the one line and the exit code.
 */
class ConfigFuzzTest {
    static final int CASES = 2500;
    static final long SEED = 20261201L;

    static final String BASE = """
            seed: 42
            run_mode: finetune
            output_dir: ./output/fuzz
            resume_training: false
            model:
              model_config:
                type: GPT2Config
                checkpoint_name_or_path: gpt2-tiny
                seq_length: 32
                num_layers: 2
                pet_config:
                  pet_type: lora
                  lora_rank: 8
                  lora_alpha: 16
                  lora_dropout: 0.05
                  target_modules: '.*c_attn'
              arch:
                type: GPT2LMHeadModel
            runner_config:
              epochs: 2
              batch_size: 4
              max_steps: -1
              gradient_accumulation_steps: 1
            optimizer:
              type: AdamW
              beta1: 0.9
              beta2: 0.999
              eps: 1.0e-8
              weight_decay: 0.0
              max_grad_norm: 1.0
            lr_schedule:
              type: cosine
              learning_rate: 1.0e-3
              warmup_steps: 10
            train_dataset:
              data_loader:
                type: text
                dataset_dir: data/corpus.txt
                shuffle: true
            callbacks:
              - type: CheckpointMonitor
                save_checkpoint_steps: 100
                keep_checkpoint_max: 2
              - type: MFLossMonitor
                per_print_times: 10
            device: cpu
            """;

    static final String[] VALUES = {"0", "-1", "1", "2147483648", "-2147483649", "9223372036854775808", "1e9", "1e308",
        "1e-400", "-0.0", ".inf", "-.inf", ".nan", "0x1F", "0o17", "1_000", "true", "false", "yes", "null", "~", "''",
        "' '", "\"\\u0000\"", "[]", "[1, 2]", "{}", "{a: 1}", "[[[[[[[[]]]]]]]]", "!!binary aGVsbG8=", "!!int 3",
        "!!str 5", "!!float x", "2026-12-01", "12:30:00", "/dev/null", "/proc/self", "../../..", "*alias",
        "&anchor 5", "|\n  text", ">\n  folded", "\"unterminated", "'quote''s'", "gpt2-tiny", "lora", "AdamW",
        "\u00e9\u00e8", "\uD83D\uDE00", "%s%n", "${HOME}", "-", "?", ": :", "a: b: c", "[", "{", "]", "}"};
    static final String[] NOISE = {"\t", ":", "- ", "[", "{", "&a ", "*a", "!!", "%YAML 1.1", "---", "...", "#", "'",
        "\"", ",", "?", "|", ">", "\u0000", "\uFEFF", "\r", "<<: *a"};

    @TempDir
    Path dir;

    @Test
    void mutatedConfigsEndInSuccessOrOneCleanError() throws Exception {
        SplittableRandom rnd = new SplittableRandom(SEED);
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "config-fuzz");
            t.setDaemon(true);
            return t;
        });
        int ok = 0;
        int refused = 0;
        long started = System.nanoTime();
        try {
            for (int i = 0; i < CASES; i++) {
                String yaml = mutate(BASE, rnd, 1 + rnd.nextInt(3));
                // What `pet finetune --dry-run` does with the file: load, override, bind, render.
                Future<String> run = pool.submit(() -> {
                    try {
                        RunConfigLoader.parse(yaml, "case.yaml", List.of()).toYaml();
                        return null;
                    } catch (ConfigException e) {
                        return e.getMessage();
                    }
                });
                String error;
                try {
                    error = run.get(10, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    run.cancel(true);
                    fail("case " + i + " hangs:\n" + yaml);
                    return;
                } catch (java.util.concurrent.ExecutionException e) {
                    fail("case " + i + " threw " + e.getCause() + " instead of a ConfigException:\n" + yaml, e.getCause());
                    return;
                }
                if (error == null) {
                    ok++;
                    continue;
                }
                refused++;
                String where = "case " + i + ": " + error + "\n---\n" + yaml;
                assertTrue(error.length() > 10 && !error.contains("\tat ") && !error.contains("java.lang.")
                        && !error.contains("com.fasterxml") && !error.matches("\\w*(Exception|Error)"), where);
            }
        } finally {
            pool.shutdownNow();
        }
        long ms = (System.nanoTime() - started) / 1_000_000;
        assertTrue(ok > CASES / 20 && refused > CASES / 2, "the mutations reach both outcomes: " + ok + " ok, "
                + refused + " refused in " + ms + " ms");
    }

    @Test
    void theCliPrintsAFuzzedConfigsErrorAsOneLineWithExitCode2() throws Exception {
        SplittableRandom rnd = new SplittableRandom(SEED + 1);
        int refused = 0;
        for (int i = 0; i < 40; i++) {
            String yaml = mutate(BASE, rnd, 2);
            Path file = dir.resolve("case.yaml");
            Files.writeString(file, yaml, StandardCharsets.UTF_8);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int exit = new PetCli(Optional::empty, new PrintStream(out, true, StandardCharsets.UTF_8),
                    new PrintStream(err, true, StandardCharsets.UTF_8)).execute("finetune", file.toString(), "--dry-run");
            String errText = err.toString(StandardCharsets.UTF_8);
            String where = "case " + i + " (exit " + exit + "): " + errText + "\n---\n" + yaml;
            if (exit != 0) {
                refused++;
                assertEquals(2, exit, where);
                List<String> lines = errText.lines().toList();
                assertEquals(1, lines.size(), where);
                assertTrue(lines.get(0).startsWith("error: "), where);
            }
        }
        assertTrue(refused > 10, "refused " + refused);
    }

    static String mutate(String yaml, SplittableRandom rnd, int times) {
        List<String> lines = new ArrayList<>(yaml.lines().toList());
        for (int t = 0; t < times && !lines.isEmpty(); t++) {
            int i = rnd.nextInt(lines.size());
            String line = lines.get(i);
            int colon = line.indexOf(':');
            switch (rnd.nextInt(8)) {
                case 0, 1 -> { // a value of another type or size
                    if (colon > 0) {
                        lines.set(i, line.substring(0, colon + 1) + " " + VALUES[rnd.nextInt(VALUES.length)]);
                    }
                }
                case 2 -> { // a key misspelt
                    int start = line.length() - line.stripLeading().length();
                    if (colon > start + 1) {
                        int at = start + rnd.nextInt(colon - start);
                        lines.set(i, line.substring(0, at) + (rnd.nextBoolean() ? "" : "x") + line.substring(at + 1));
                    }
                }
                case 3 -> lines.remove(i);
                case 4 -> lines.add(i, line);
                case 5 -> { // noise somewhere in the line
                    int at = rnd.nextInt(line.length() + 1);
                    lines.set(i, line.substring(0, at) + NOISE[rnd.nextInt(NOISE.length)] + line.substring(at));
                }
                case 6 -> lines.set(i, (rnd.nextBoolean() ? " " : "") + (rnd.nextBoolean() ? line.stripLeading()
                        : "  " + line));
                default -> { // cut short
                    String all = String.join("\n", lines);
                    return all.substring(0, rnd.nextInt(all.length() + 1));
                }
            }
        }
        return String.join("\n", lines) + "\n";
    }
}
