package dev.pet.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtEngine;
import dev.pet.hf.ByteLevelBpe;
import dev.pet.llama.LlamaCheckpoint;
import dev.pet.llama.LlamaPresets;
import dev.pet.llama.LlamaProvider;
import dev.pet.llama.LlamaWeights;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pet generate} and {@code pet eval} with {@code --model BASE --adapter DIR} and no run config, through the CLI
 * entry point and the real engine: the family comes from the base directory's config.json, the PET method and its
 * options from the adapter's adapter_config.json.
 */
class PetCliAdapterTest {
    @TempDir
    static Path dir;
    static Path base;
    static Path adapter;

    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final ByteArrayOutputStream err = new ByteArrayOutputStream();

    /** A Llama directory (config.json, safetensors, tokenizer.json) and a LoRA adapter with every factor random. */
    @BeforeAll
    static void files() throws Exception {
        base = dir.resolve("llama");
        LlamaCheckpoint.save(LlamaWeights.random(LlamaPresets.config("llama-tiny"), 4), base);
        Files.write(base.resolve("tokenizer.json"), ByteLevelBpe.tokenizerJson(List.of(),
                List.of("<|begin_of_text|>", "<|end_of_text|>")));
        PretrainedModel model = new LlamaProvider().load(ModelRequest.of(base.toString()));
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(model, lora.parseConfig(Map.of("r", 4, "target_modules", "all-linear")));
        Random r = new Random(3);
        Map<String, Tensor> values = new LinkedHashMap<>();
        pet.trainableTensors().forEach((name, t) -> {
            float[] v = new float[(int) t.elementCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.5 * r.nextGaussian());
            }
            values.put(name, Tensor.ofFloats(v, t.shape()));
        });
        adapter = dir.resolve("adapter");
        lora.saveAdapter(pet.withTrainables(values), values, adapter);
        Files.writeString(dir.resolve("valid.txt"), "The lamp was lit at dusk and the sea was calm.\n".repeat(8));
    }

    private int run(String... args) {
        out.reset();
        err.reset();
        PetCli cli = new PetCli(() -> Optional.of(new DefaultPetEngine()), new PrintStream(out, true,
                StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return cli.execute(args);
    }

    /** What the adapter generates, computed without the CLI: the plugin loads it onto the generation-form base. */
    private static String expectedGreedy(String prompt, int tokens) {
        PretrainedModel gen = new LlamaProvider().load(ModelRequest.of(base.toString())
                .withForm(ModelRequest.GraphForm.GENERATION));
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.loadAdapter(lora.getPetModel(gen, lora.adapterPetConfig(adapter)), adapter);
        try (OrtEngine e = OrtEngine.cpu()) {
            long[] ids = new Generator(e.compile(pet.inferenceModel()), gen.maxPositions())
                    .generate(gen.tokenizer().encode(prompt), GenerationConfig.greedy(tokens));
            return gen.tokenizer().decode(ids);
        }
    }

    @Test
    void generateRunsABaseDirectoryWithAnAdapterAndNoConfig() {
        assertEquals(0, run("generate", "--model", base.toString(), "--adapter", adapter.toString(), "-p", "Hello",
                "--max-new-tokens", "6"), err.toString(StandardCharsets.UTF_8));
        String withAdapter = out.toString(StandardCharsets.UTF_8);
        assertEquals("Hello" + expectedGreedy("Hello", 6) + "\n", withAdapter);
        assertEquals(0, run("generate", "--model", base.toString(), "-p", "Hello", "--max-new-tokens", "6"),
                err.toString(StandardCharsets.UTF_8));
        assertNotEquals(withAdapter, out.toString(StandardCharsets.UTF_8), "the adapter changes the text");
    }

    @Test
    void evalMeasuresABaseDirectoryWithAndWithoutAnAdapterOnAFile() throws Exception {
        Path withOut = dir.resolve("eval-adapter");
        assertEquals(0, run("eval", "--model", base.toString(), "--adapter", adapter.toString(), "--data",
                dir.resolve("valid.txt").toString(), "--set", "model.model_config.seq_length=16", "--set",
                "output_dir=" + withOut), err.toString(StandardCharsets.UTF_8));
        assertTrue(out.toString(StandardCharsets.UTF_8).startsWith("eval loss "), out.toString(StandardCharsets.UTF_8));
        JsonNode tuned = new ObjectMapper().readTree(withOut.resolve(DefaultPetEngine.EVAL_RESULTS).toFile());
        assertEquals("lora", tuned.get("pet_type").asText());
        assertEquals(adapter.toString(), tuned.get("adapter").asText());
        Path baseOut = dir.resolve("eval-base");
        assertEquals(0, run("eval", "--model", base.toString(), "--data", dir.resolve("valid.txt").toString(),
                "--set", "model.model_config.seq_length=16", "--set", "output_dir=" + baseOut),
                err.toString(StandardCharsets.UTF_8));
        JsonNode plain = new ObjectMapper().readTree(baseOut.resolve(DefaultPetEngine.EVAL_RESULTS).toFile());
        assertEquals("none", plain.get("pet_type").asText());
        assertEquals(tuned.get("tokens").asLong(), plain.get("tokens").asLong(), "the same windows");
        assertTrue(Math.abs(tuned.get("loss").asDouble() - plain.get("loss").asDouble()) > 1e-3,
                "the adapter changes the loss: " + tuned + " vs " + plain);
    }
}
