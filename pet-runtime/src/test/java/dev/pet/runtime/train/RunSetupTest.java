package dev.pet.runtime.train;

import dev.pet.runtime.plugin.PluginKind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PET config errors found by the plugin keep the full YAML key path. */
class RunSetupTest {
    @TempDir
    Path dir;

    private ConfigException failure(String petConfig) {
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                RunSetupTest.class.getClassLoader(), null), new TrainingListener() { },
                new TokenCache(dir.resolve("tokens")), new PrintStream(System.out));
        var config = RunConfigLoader.parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny, seq_length: 8,"
                + " pet_config: " + petConfig + "}}", "run.yaml", List.of());
        return assertThrows(ConfigException.class, () -> new RunSetup(config, env));
    }

    @Test
    void petConfigErrorsNameTheFullKeyPath() {
        ConfigException rank = failure("{pet_type: lora, lora_rank: 0}");
        assertEquals("model.model_config.pet_config.lora_rank", rank.keyPath());
        assertEquals("model.model_config.pet_config.lora_rank: must be >= 1, found 0", rank.getMessage());
        assertEquals("model.model_config.pet_config.target_modules",
                failure("{pet_type: lora, target_modules: [no_such_module]}").keyPath());
        assertEquals("model.model_config.pet_config.pre_seq_len",
                failure("{pet_type: prefix_tuning, pre_seq_len: 0}").keyPath());
        assertEquals("model.model_config.pet_config.bottleneck_sise",
                failure("{pet_type: adapter, bottleneck_sise: 8}").keyPath());
    }

    /** A provider of a family named like GPT-2 but not GPT-2: only its own declared type names select it. */
    private static final class Gpt2MoeProvider implements dev.pet.api.ModelProvider {
        @Override
        public String id() {
            return "gpt2moe";
        }

        @Override
        public java.util.Set<String> aliases() {
            return java.util.Set.of("gpt2moeconfig", "gpt2moeforcausallm");
        }

        @Override
        public dev.pet.api.PretrainedModel load(dev.pet.api.ModelRequest request) {
            throw new UnsupportedOperationException();
        }
    }

    @Test
    void runTypeNamesSelectTheProviderThatDeclaresThem() {
        var registry = new dev.pet.api.PetAdapters(List.of(), List.of(new dev.pet.gpt2.Gpt2Provider(),
                new dev.pet.llama.LlamaProvider(), new Gpt2MoeProvider()));
        assertEquals("GPT2MoEConfig", RunSetup.providerHint(registry, "GPT2MoEConfig", "GPT2LMHeadModel"),
                "no family is special-cased by its name's prefix");
        assertEquals("gpt2moe", registry.provider(RunSetup.providerHint(registry, "GPT2MoEConfig",
                "GPT2LMHeadModel")).id());
        assertEquals("gpt2", registry.provider(RunSetup.providerHint(registry, "GPT2Config", "GPT2LMHeadModel"))
                .id());
        assertEquals("llama", registry.provider(RunSetup.providerHint(registry, "Qwen2Config", "x")).id());
        assertEquals("Qwen2ForCausalLM", RunSetup.providerHint(registry, "UnknownConfig", "Qwen2ForCausalLM"),
                "the architecture type when no provider takes the config type");
        assertEquals("GPT2", RunSetup.providerHint(registry, "UnknownConfig", "GPT2WithLora"),
                "a MindFormers With<Pet> architecture by its stem");
        assertEquals("UnknownConfig", RunSetup.providerHint(registry, "UnknownConfig", "UnknownModel"));
    }

    private double[] losses(String runner) {
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                RunSetupTest.class.getClassLoader(), null), new TrainingListener() { },
                new TokenCache(dir.resolve("tokens")), new PrintStream(System.out));
        var config = RunConfigLoader.parse("seed: 3\nrunner_config: " + runner + "\nmodel: {model_config: "
                + "{checkpoint_name_or_path: gpt2-tiny, seq_length: 8, pet_config: {pet_type: lora, lora_rank: 4}}}",
                "run.yaml", List.of());
        RunSetup s = new RunSetup(config, env);
        long[] tokens = new long[2 * 9];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (i * 37L + 11) % s.base.vocabSize();
        }
        float[] mask = new float[2 * 8];
        java.util.Arrays.fill(mask, 1f);
        var batch = new dev.pet.runtime.data.Batch(2, 8, tokens, mask, dev.pet.runtime.data.DataPosition.START);
        double[] out = new double[4];
        try (var engine = s.engine(); var step = s.trainStep(engine)) {
            assertEquals(runner.contains("prepack_weights: true") ? Long.MAX_VALUE
                    : dev.pet.engine.EngineOptions.DEFAULT_PREPACK_LIMIT, engine.options().prepackLimitBytes());
            assertEquals(!runner.contains("recompute: true"), engine.options().plannedStepMemory());
            for (int i = 0; i < out.length; i++) {
                out[i] = step.step(List.of(batch), 1e-2, i + 1).loss();
            }
        }
        return out;
    }

    /** Pre-packed weights only change where the kernels read them from: the same losses, bit for bit. */
    @Test
    void prepackedWeightsTrainTheSame() {
        double[] plain = losses("{batch_size: 2}");
        double[] packed = losses("{batch_size: 2, prepack_weights: true}");
        org.junit.jupiter.api.Assertions.assertArrayEquals(plain, packed);
        org.junit.jupiter.api.Assertions.assertTrue(plain[3] < plain[0], "it trains: " + plain[0] + " -> " + plain[3]);
    }

    /** With recomputation the step's memory is not planned (measured worse there); the losses are the same. */
    @Test
    void recomputedStepsTrainTheSameUnplanned() {
        double[] plain = losses("{batch_size: 2}");
        double[] recomputed = losses("{batch_size: 2, recompute: true}");
        for (int i = 0; i < plain.length; i++) {
            assertEquals(plain[i], recomputed[i], 1e-6 * Math.abs(plain[i]), "step " + (i + 1));
        }
    }
}
