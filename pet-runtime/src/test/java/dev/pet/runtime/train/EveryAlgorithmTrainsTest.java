package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.Trainer;
import dev.pet.runtime.metrics.StepMetrics;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.metrics.TrainingSummary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every installed PET algorithm trains gpt2-tiny on a small text through the Trainer: the loss falls and an adapter
 * directory is written. (gpt2-tiny is randomly initialised, so the falls are modest; see TrainerLoraTest.)
 */
class EveryAlgorithmTrainsTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"lora", "prefix_tuning", "p_tuning_v2", "adapter", "bitfit"})
    void trainingLowersTheLoss(String pet) throws Exception {
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The lamp was lit at dusk and the sea was calm.\n".repeat(20));
        System.setProperty("user.home", dir.resolve("home").toString());
        List<Double> losses = new ArrayList<>();
        TrainingListener record = new TrainingListener() {
            @Override
            public void onStep(StepMetrics s) {
                losses.add(s.loss());
            }
        };
        Map<String, Object> cfg = switch (pet) {
            case "prefix_tuning" -> Map.of("num_virtual_tokens", 4, "prefix_projection", true, "encoder_hidden_size", 32);
            case "p_tuning_v2" -> Map.of("num_virtual_tokens", 4);
            case "adapter" -> Map.of("bottleneck_size", 16);
            default -> Map.of();
        };
        TrainingSummary s = Trainer.builder().model("gpt2-tiny").petMethod(pet).petConfig(cfg).trainDataset(corpus)
                .seqLength(16).batchSize(4).maxSteps(30).learningRate(1e-2).outputDir(dir.resolve(pet)).seed(2)
                .build().withListener(record).finetune();
        assertEquals(30, s.steps());
        double first = losses.get(0);
        double last = losses.stream().skip(25).mapToDouble(Double::doubleValue).average().orElseThrow();
        // Averaged over the last five steps; prefix methods move slowest on a random base model.
        assertTrue(last < first - 0.05, pet + ": loss " + first + " -> " + last);
        assertTrue(Files.isRegularFile(dir.resolve(pet).resolve("adapter").resolve("adapter_config.json")));
    }
}
