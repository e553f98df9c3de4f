package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every PET algorithm trains the Llama family through the Trainer: the loss falls and a PEFT-style adapter
 * directory is written. BitFit needs biases, so it trains qwen2-tiny (q/k/v biases) and refuses bias-free
 * llama-tiny with one clear line.
 */
class LlamaTrainsTest {
    @TempDir
    Path dir;

    private TrainingSummary train(String model, String pet, Map<String, Object> cfg, List<Double> losses)
            throws Exception {
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The lamp was lit at dusk and the sea was calm.\n".repeat(20));
        System.setProperty("user.home", dir.resolve("home").toString());
        TrainingListener record = new TrainingListener() {
            @Override
            public void onStep(StepMetrics s) {
                losses.add(s.loss());
            }
        };
        return Trainer.builder().model(model).petMethod(pet).petConfig(cfg).trainDataset(corpus).seqLength(16)
                .batchSize(4).maxSteps(30).learningRate(1e-2).outputDir(dir.resolve(pet)).seed(2).build()
                .withListener(record).finetune();
    }

    @ParameterizedTest
    @CsvSource({"llama-tiny,lora", "llama-tiny,prefix_tuning", "llama-tiny,p_tuning_v2", "llama-tiny,adapter",
            "qwen2-tiny,bitfit", "qwen2-tiny,lora"})
    void trainingLowersTheLoss(String model, String pet) throws Exception {
        Map<String, Object> cfg = switch (pet) {
            case "lora" -> Map.of("target_modules", List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                    "up_proj", "down_proj"));
            case "prefix_tuning" -> Map.of("num_virtual_tokens", 4, "prefix_projection", true,
                    "encoder_hidden_size", 32);
            case "p_tuning_v2" -> Map.of("num_virtual_tokens", 4);
            case "adapter" -> Map.of("bottleneck_size", 16);
            default -> Map.of();
        };
        List<Double> losses = new ArrayList<>();
        TrainingSummary s = train(model, pet, cfg, losses);
        assertEquals(30, s.steps());
        double first = losses.get(0);
        double last = losses.stream().skip(25).mapToDouble(Double::doubleValue).average().orElseThrow();
        assertTrue(last < first - 0.05, model + " " + pet + ": loss " + first + " -> " + last);
        assertTrue(Files.isRegularFile(dir.resolve(pet).resolve("adapter").resolve("adapter_config.json")));
    }

    @Test
    void mindFormersConfigAndArchNamesSelectTheLlamaProvider() throws Exception {
        var registry = dev.pet.api.PetAdapters.discover(LlamaTrainsTest.class.getClassLoader());
        Path qwen = dir.resolve("qwen");
        dev.pet.llama.LlamaCheckpoint.save(dev.pet.llama.LlamaWeights.random(
                dev.pet.llama.LlamaPresets.config("qwen2-tiny"), 1), qwen);
        for (String[] names : new String[][] {{"Qwen2Config", "Qwen2ForCausalLM"}, {"LlamaConfig",
                "LlamaForCausalLM"}}) {
            var model = registry.getPretrainedModel(RunSetup.providerHint(registry, names[0], names[1]),
                    dev.pet.api.ModelRequest.of(qwen.toString()));
            assertEquals("llama", model.providerId());
            assertEquals("qwen2", model.config().get("model_type"));
        }
    }

    @Test
    void aHuggingFaceDirectoryLoadsAsTheFamilyItsConfigNames() throws Exception {
        var registry = dev.pet.api.PetAdapters.discover(LlamaTrainsTest.class.getClassLoader());
        Path llama = dir.resolve("llama-dir");
        dev.pet.llama.LlamaCheckpoint.save(dev.pet.llama.LlamaWeights.random(
                dev.pet.llama.LlamaPresets.config("llama-tiny"), 1), llama);
        // The Trainer builder's default hint is GPT-2's; config.json's model_type decides.
        var model = registry.getPretrainedModel(RunSetup.providerHint(registry, "GPT2Config", "GPT2LMHeadModel"),
                dev.pet.api.ModelRequest.of(llama.toString()));
        assertEquals("llama", model.providerId());
        Files.writeString(llama.resolve("config.json"),
                Files.readString(llama.resolve("config.json")).replace("\"llama\"", "\"gpt_neox\""));
        PetException e = assertThrows(PetException.class, () -> registry.getPretrainedModel("gpt2",
                dev.pet.api.ModelRequest.of(llama.toString())));
        assertTrue(e.getMessage().contains("model_type 'gpt_neox'"), e.getMessage());
    }

    @Test
    void bitFitOnABiasFreeLlamaFailsClearly() {
        PetException e = assertThrows(PetException.class,
                () -> train("llama-tiny", "bitfit", Map.of(), new ArrayList<>()));
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
        assertTrue(e.getMessage().contains("llama-tiny") && e.getMessage().contains("bias"), e.getMessage());
    }
}
