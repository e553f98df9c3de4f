package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A text's score against {@code pet eval} over a jsonl file holding just that text, with a sequence length that
 * makes the text exactly its windows: a short text is one (shorter) window, a long one two full windows.
 */
class TextScorerTest {
    @TempDir
    static Path dir;
    static Path run;

    @BeforeAll
    static void train() throws Exception {
        Path corpus = DataParallelFixtures.corpus(dir);
        System.setProperty("user.home", dir.resolve("home").toString());
        run = dir.resolve("run");
        Files.createDirectories(run);
        Files.writeString(run.resolve("run.yaml"), DataParallelFixtures.yaml(run, corpus, 4, 1));
        Trainer.fromYaml(run.resolve("run.yaml"), "runner_config.max_steps=2").finetune(); // a trained adapter/
    }

    static RunConfig config(Path data, int seqLength) {
        return RunConfigLoader.load(run.resolve("run.yaml"), List.of("model.model_config.seq_length=" + seqLength,
                "eval_dataset.data_loader.type=jsonl", "eval_dataset.data_loader.dataset_dir=" + data));
    }

    static EvalMetrics petEval(String text, int seqLength) throws Exception {
        Path data = Files.createTempFile(dir, "row", ".jsonl");
        Files.writeString(data, new ObjectMapper().writeValueAsString(Map.of("text", text)) + "\n");
        return Trainer.of(config(data, seqLength)).evaluate();
    }

    @Test
    void everyRowScoresAsPetEvalScoresItAlone() throws Exception {
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL, getClass().getClassLoader(),
                null), new TrainingListeners(List.of()), TokenCache.defaultCache(), new PrintStream(System.err, true));
        String longText = "The keeper wrote the weather in the log and wound the clockwork at dusk, every day.";
        try (TextScorer scorer = DefaultPetEngine.openScorer(config(dir, 16), null, env)) {
            for (String text : List.of("The lamp was lit.", "Wind the clockwork", "ships")) {
                int n = scorer.tokens(text).length;
                assertTrue(n < 17, text + ": shorter than one window of 17");
                TextScorer.Score s = scorer.score(text);
                EvalMetrics expected = petEval(text, n - 1);
                assertEquals(expected.tokens(), s.tokens(), text);
                assertEquals(expected.loss(), s.loss(), 1e-5 * expected.loss(), text);
                assertEquals(-s.loss(), s.meanLogLikelihood());
            }
            int n = scorer.tokens(longText).length;
            assertTrue(n % 2 == 0 && n > 17, longText + " has " + n + " tokens: pick an even count above 17");
            EvalMetrics expected = petEval(longText, n / 2 - 1);
            try (TextScorer twoWindows = DefaultPetEngine.openScorer(config(dir, n / 2 - 1), null, env)) {
                TextScorer.Score s = twoWindows.score(longText);
                assertEquals(n - 2, s.tokens(), "two windows predict all but their first tokens");
                assertEquals(expected.tokens(), s.tokens());
                assertEquals(expected.loss(), s.loss(), 1e-5 * expected.loss());
            }
            TextScorer.Score nothing = scorer.score("");
            assertEquals(0, nothing.tokens(), "the end-of-text token alone predicts nothing");
            assertTrue(Double.isNaN(nothing.loss()));
        }
    }
}
