package dev.pet.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.io.Npy;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad inputs through {@code pet} with the real engine and plugins: each is refused before any training step with one
 * line that names what is wrong, and the exit code says config (2) or runtime (1).
 */
class BadInputTest {
    @TempDir
    static Path dir;
    static Path corpus;

    record Result(int exit, String out, String err) {
    }

    @BeforeAll
    static void data() throws Exception {
        System.setProperty("user.home", dir.resolve("home").toString());
        corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The keeper lit the lamp at dusk and watched the sea.\n".repeat(20));
    }

    static Result pet(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = new PetCli(() -> Optional.of(new DefaultPetEngine()), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).execute(args);
        return new Result(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Path config(String name, String pet, String data) throws Exception {
        Path file = dir.resolve(name + ".yaml");
        Files.writeString(file, """
                output_dir: '%s'
                model: {model_config: {checkpoint_name_or_path: gpt2-tiny, seq_length: 8, pet_config: %s}}
                runner_config: {batch_size: 2, max_steps: 2}
                train_dataset: {data_loader: %s}
                """.formatted(dir.resolve("out-" + name), pet, data));
        return file;
    }

    static Path lora(String name) throws Exception {
        return config(name, "{pet_type: lora, lora_rank: 2}", "{type: text, dataset_dir: '" + corpus + "'}");
    }

    static void assertRefused(Result r, int exit, String... parts) {
        String where = "exit " + r.exit() + ", stderr: " + r.err();
        assertEquals(exit, r.exit(), where);
        List<String> lines = r.err().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(1, lines.size(), where);
        for (String part : parts) {
            assertTrue(lines.get(0).contains(part), "expected '" + part + "' in " + where);
        }
        assertFalse(r.err().contains("\tat "), "no stack trace: " + where);
    }

    @Test
    void absurdModelSizesSayWhatWasAskedAndWhatFits() throws Exception {
        Path c = lora("sizes");
        assertRefused(pet("inspect", c.toString(), "--set", "model.model_config.num_layers=1e9"), 1,
                "GPT-2 with n_layer 1000000000", "weights", "free", "at most n_layer");
        assertRefused(pet("inspect", c.toString(), "--set", "model.model_config.hidden_size=1e9"), 1,
                "GPT-2 with n_layer 2, n_embd 1000000000", "weights", "free");
    }

    @Test
    void absurdPetSizesSayWhatWasAskedAndWhatFits() throws Exception {
        Path c = lora("pet-sizes");
        for (String rank : new String[] {"1e6", "1e9"}) {
            assertRefused(pet("inspect", c.toString(), "--set", "model.model_config.pet_config.lora_rank=" + rank), 1,
                    "lora: r " + (long) Double.parseDouble(rank) + " for transformer.h.0.attn.c_attn exceeds min(in 64, "
                    + "out 192): an update of that module has rank at most 64");
        }
        Path prefix = config("prefix", "{pet_type: prefix_tuning, num_virtual_tokens: 100000000}",
                "{type: text, dataset_dir: '" + corpus + "'}");
        assertRefused(pet("inspect", prefix.toString()), 1, "num_virtual_tokens 100000000");
    }

    @Test
    void tokenIdsOutsideTheVocabularyAreRefusedNamingFileAndOffset() throws Exception {
        long[] ids = new long[200];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i % 50;
        }
        ids[137] = 50300;
        Path npy = dir.resolve("tokens.npy");
        Npy.write(npy, Tensor.ofLongs(ids, ids.length));
        Path c = config("tokens", "{pet_type: lora, lora_rank: 2}", "{type: tokens, dataset_dir: '" + npy + "'}");
        Result r = pet("finetune", c.toString());
        long headerBytes = Files.size(npy) - 8L * ids.length;
        assertRefused(r, 1, "token id 50300 at index 137 (byte offset " + (headerBytes + 8 * 137) + ") of " + npy,
                "outside the vocabulary [0, 50257) of gpt2-tiny");
        assertFalse(r.err().contains("step 1"), "refused before training: " + r.err());
    }

    @Test
    void nonFiniteAdapterWeightsAreRefusedNamingTheTensor() throws Exception {
        Path c = lora("nan");
        assertEquals(0, pet("finetune", c.toString()).exit());
        Path adapter = dir.resolve("out-nan/adapter");
        Path broken = Files.createDirectories(dir.resolve("nan-adapter"));
        for (Path f : Files.list(adapter).toList()) {
            Files.copy(f, broken.resolve(f.getFileName()));
        }
        Path weights = broken.resolve("adapter_model.safetensors");
        Map<String, Tensor> tensors = new java.util.TreeMap<>(SafeTensors.read(weights));
        String first = tensors.keySet().iterator().next();
        float[] v = tensors.get(first).toFloatArray();
        v[3] = Float.NaN;
        tensors.put(first, Tensor.ofFloats(v, tensors.get(first).shape()));
        Files.delete(weights);
        SafeTensors.write(weights, tensors, Map.of());
        Path out = dir.resolve("nan-export");
        assertRefused(pet("export", c.toString(), "--format", "peft", "--from", broken.toString(), "-o", out.toString()),
                1, "adapter " + broken, "tensor 'transformer.h.0.attn.c_attn.lora_", "holds a non-finite value (NaN) at element ");
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void commandLineMistakesAreConfigErrors() throws Exception {
        Path c = lora("cli");
        assertRefused(pet("finetune", c.toString(), "--set", "..=5"), 2, "empty segment in override key");
        assertRefused(pet("--plugins-dir", "/nonexistent", "plugins"), 2, "--plugins-dir /nonexistent: no such directory");
        assertRefused(pet("export", c.toString(), "--format", "peft", "-o", dir.resolve("x").toString()), 1,
                "no adapter to export: give --from DIR");
        Path existing = Files.writeString(dir.resolve("existing.onnx"), "keep");
        assertRefused(pet("export", c.toString(), "--format", "merged-onnx", "-o", existing.toString()), 2,
                existing + " already exists; pass --force to replace it");
        assertEquals("keep", Files.readString(existing));
    }

    @Test
    void outputDirsThatCannotHoldARunAreExplained() throws Exception {
        Path c = lora("outdirs");
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {file.toString(), "output_dir: " + file + " is a regular file, not a directory"});
        cases.add(new String[] {"/dev/null", "output_dir: /dev/null is a device or other special file, not a directory"});
        cases.add(new String[] {"/proc/pet", "output_dir: /proc/pet is on the proc file system"});
        for (String[] k : cases) {
            if (k[0].startsWith("/proc") && !Files.isDirectory(Path.of("/proc/self"))) {
                continue;
            }
            assertRefused(pet("finetune", c.toString(), "--set", "output_dir='" + k[0] + "'"), 2, k[1]);
        }
    }

    @Test
    void nonFiniteModelWeightsAreRefusedAtLoadNamingTheTensor() throws Exception {
        var config = dev.pet.gpt2.Gpt2Config.of(50257, 64, 32, 1, 2);
        var weights = dev.pet.gpt2.Gpt2Weights.random(config, 1);
        String name = "transformer.h.0.mlp.c_fc.weight";
        float[] v = weights.get(name).toFloatArray();
        v[5] = Float.POSITIVE_INFINITY;
        Path model = dir.resolve("inf-model");
        dev.pet.gpt2.Gpt2Checkpoint.save(weights.with(name, Tensor.ofFloats(v, weights.get(name).shape())), model);
        Path c = lora("inf");
        assertRefused(pet("generate", c.toString(), "--set", "model.model_config.checkpoint_name_or_path='" + model + "'",
                "--prompt", "The keeper"), 1, "model " + model + ": tensor '" + name
                + "' holds a non-finite value (Infinity) at element 5");
    }
}
