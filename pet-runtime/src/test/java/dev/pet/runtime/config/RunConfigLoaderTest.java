package dev.pet.runtime.config;

import dev.pet.engine.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunConfigLoaderTest {
    static final String ISSUE_EXAMPLE = """
            seed: 42
            run_mode: finetune
            output_dir: ./output/gpt2-lora
            resume_training: false
            model:
              model_config:
                type: GPT2Config
                checkpoint_name_or_path: /models/gpt2      # Hugging Face directory, or a preset
                seq_length: 1024
                pet_config: {pet_type: lora, lora_rank: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: '.*c_attn'}
              arch: {type: GPT2LMHeadModel}
            runner_config: {epochs: 1, batch_size: 8, max_steps: -1, gradient_accumulation_steps: 1}
            optimizer: {type: AdamW, beta1: 0.9, beta2: 0.999, eps: 1.0e-8, weight_decay: 0.01, max_grad_norm: 1.0}
            lr_schedule: {type: cosine, learning_rate: 2.0e-4, warmup_steps: 100}
            train_dataset: {data_loader: {type: text, dataset_dir: /data/wikitext-2/train, shuffle: true}}
            eval_dataset:  {data_loader: {type: text, dataset_dir: /data/wikitext-2/valid}}
            callbacks: {checkpoint_steps: 500, keep_checkpoints: 3, eval_steps: 500, log_steps: 10}
            device: cuda:1
            """;

    static RunConfig parse(String yaml, String... overrides) {
        return RunConfigLoader.parse(yaml, "test.yaml", List.of(overrides));
    }

    @Test
    void parsesTheMindFormersLayoutOfTheIssue() {
        RunConfig c = parse(ISSUE_EXAMPLE);
        assertEquals(42, c.seed());
        assertEquals(RunMode.FINETUNE, c.runMode());
        assertEquals(Path.of("./output/gpt2-lora"), c.outputDir());
        assertFalse(c.resumeTraining());
        assertEquals(new ModelConfig("GPT2Config", "/models/gpt2", 1024, Map.of()), c.model().modelConfig());
        assertEquals("GPT2LMHeadModel", c.model().archType());
        PetSpec pet = c.model().pet();
        assertEquals("lora", pet.petType());
        assertEquals(Map.of("lora_rank", 8, "lora_alpha", 16, "lora_dropout", 0.05, "target_modules", ".*c_attn"),
                pet.config());
        assertEquals(new RunnerConfig(1, 8, -1, 1, false), c.runner());
        assertEquals(new OptimizerConfig(OptimizerConfig.Type.ADAMW, 0.9, 0.999, 1e-8, 0.01, 1.0, 0.0), c.optimizer());
        assertEquals(LrScheduleConfig.Type.COSINE, c.lrSchedule().type());
        assertEquals(2e-4, c.lrSchedule().learningRate());
        assertEquals(100, c.lrSchedule().warmupSteps());
        assertEquals(new DataLoaderConfig(DataLoaderConfig.Type.TEXT, Path.of("/data/wikitext-2/train"), true),
                c.trainDataset());
        assertFalse(c.evalDataset().shuffle());
        assertEquals(new CallbacksConfig(500, 3, 500, 10, -1), c.callbacks());
        assertEquals(Device.cuda(1), c.device());
    }

    @Test
    void parsesTheSeedFormWithPetUnderArch() {
        RunConfig c = parse("""
                model:
                  model_config: {checkpoint_name_or_path: gpt2-tiny, seq_length: 64, num_layers: 2}
                  arch:
                    type: GPT2WithLora
                    pet:
                      pet_type: lora
                      pet_config: {lora_rank: 4, lora_alpha: 8}
                """);
        assertEquals("GPT2WithLora", c.model().archType());
        assertEquals(new PetSpec("lora", Map.of("lora_rank", 4, "lora_alpha", 8)), c.model().pet());
        assertEquals(Map.of("num_layers", 2), c.model().modelConfig().overrides());
    }

    @Test
    void archNameImpliesThePetTypeAndMustAgreeWithIt() {
        RunConfig implied = parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny}, arch: {type: GPT2WithPrefix}}");
        assertEquals(new PetSpec("prefix", Map.of()), implied.model().pet());
        ConfigException e = assertThrows(ConfigException.class, () -> parse("""
                model:
                  model_config: {checkpoint_name_or_path: gpt2-tiny, pet_config: {pet_type: adapter}}
                  arch: {type: GPT2WithLora}
                """));
        assertEquals("model.arch.type", e.keyPath());
        assertTrue(e.getMessage().contains("lora") && e.getMessage().contains("adapter"), e.getMessage());
    }

    @Test
    void rejectsTwoPetConfigs() {
        ConfigException e = assertThrows(ConfigException.class, () -> parse("""
                model:
                  model_config: {checkpoint_name_or_path: g, pet_config: {pet_type: lora}}
                  arch: {type: GPT2LMHeadModel, pet: {pet_type: lora}}
                """));
        assertEquals("model.arch.pet", e.keyPath());
    }

    @Test
    void acceptsMindFormersListFormOfCallbacks() {
        RunConfig c = parse("""
                model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}
                callbacks:
                  - type: MFLossMonitor
                    per_print_times: 5
                  - type: CheckpointMointor
                    prefix: gpt2
                    save_checkpoint_steps: 200
                    keep_checkpoint_max: 2
                    integrated_save: false
                  - type: ObsMonitor
                """);
        assertEquals(new CallbacksConfig(200, 2, 500, 5, -1), c.callbacks());
    }

    @Test
    void recomputeIsARunnerSwitchOutsideTheRunIdentity() {
        RunConfig plain = parse(ISSUE_EXAMPLE);
        assertEquals(false, plain.runner().recompute());
        assertTrue(!plain.toYaml().contains("recompute"), "written only when set");
        RunConfig on = parse(ISSUE_EXAMPLE, "runner_config.recompute=true");
        assertEquals(true, on.runner().recompute());
        assertEquals(true, parse(on.toYaml()).runner().recompute(), "round trip");
        assertEquals(plain.hash(), on.hash(), "the same gradients: a run may resume with it switched");
        ConfigException e = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("gradient_accumulation_steps: 1}",
                        "gradient_accumulation_steps: 1, recompute: blocks}")));
        assertEquals("runner_config.recompute: expected true or false, found 'blocks'", e.getMessage());
        RunConfig packed = parse(ISSUE_EXAMPLE, "runner_config.prepack_weights=true");
        assertTrue(packed.runner().prepackWeights() && !plain.runner().prepackWeights());
        assertTrue(packed.toYaml().contains("prepack_weights: true") && !plain.toYaml().contains("prepack"));
        assertEquals(plain.hash(), packed.hash(), "the same results: a run may resume with it switched");
    }

    @Test
    void unknownKeyNamesFullPathValueAndSuggestion() {
        ConfigException e = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE.replace(
                "runner_config: {epochs: 1, batch_size: 8,", "runner_config: {epochs: 1, batch_sise: 8,")));
        assertEquals("runner_config.batch_sise", e.keyPath());
        String msg = e.getMessage();
        assertTrue(msg.startsWith("runner_config.batch_sise: unknown key (value 8)"), msg);
        assertTrue(msg.contains("did you mean 'batch_size'"), msg);
        assertTrue(msg.contains("valid keys here: epochs, batch_size, max_steps, gradient_accumulation_steps"), msg);
    }

    @Test
    void unknownKeyInsideListCallbacksAndTopLevel() {
        ConfigException list = assertThrows(ConfigException.class, () -> parse("""
                model: {model_config: {checkpoint_name_or_path: g}}
                callbacks: [{type: MFLossMonitor, per_print_time: 3}]
                """));
        assertEquals("callbacks.0.per_print_time", list.keyPath());
        assertTrue(list.getMessage().contains("did you mean 'per_print_times'"), list.getMessage());
        ConfigException top = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE + "use_parallel: false\n"));
        assertEquals("use_parallel", top.keyPath());
    }

    @Test
    void wrongTypeNamesPathAndFoundValue() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("batch_size: 8", "batch_size: eight")));
        assertEquals("runner_config.batch_size: expected an integer, found 'eight'", e.getMessage());
        ConfigException b = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("resume_training: false", "resume_training: maybe")));
        assertEquals("resume_training: expected true or false, found 'maybe'", b.getMessage());
        ConfigException m = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("runner_config: {", "runner_config: [1, 2]\nx: {")));
        assertEquals("runner_config", m.keyPath());
    }

    @Test
    void invalidChoiceListsChoicesAndSuggests() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("type: cosine", "type: cosin")));
        assertEquals("lr_schedule.type", e.keyPath());
        assertTrue(e.getMessage().contains("unknown value 'cosin'"), e.getMessage());
        assertTrue(e.getMessage().contains("constant, linear, cosine, polynomial"), e.getMessage());
        assertTrue(e.getMessage().contains("did you mean 'cosine'"), e.getMessage());
        ConfigException loader = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("type: text, dataset_dir: /data/wikitext-2/train", "type: parquet, dataset_dir: /x")));
        assertEquals("train_dataset.data_loader.type", loader.keyPath());
        ConfigException device = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE.replace("cuda:1", "tpu")));
        assertEquals("device", device.keyPath());
    }

    @Test
    void rangeChecksNameTheKey() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE.replace("beta2: 0.999", "beta2: 1.5")));
        assertEquals("optimizer.beta2", e.keyPath());
        ConfigException lr = assertThrows(ConfigException.class,
                () -> parse(ISSUE_EXAMPLE, "lr_schedule.lr_end=1.0"));
        assertEquals("lr_schedule.lr_end", lr.keyPath());
    }

    @Test
    void missingRequiredKeysAreNamed() {
        assertEquals("model.model_config.checkpoint_name_or_path",
                assertThrows(ConfigException.class, () -> parse("model: {model_config: {seq_length: 8}}")).keyPath());
        assertEquals("model", assertThrows(ConfigException.class, () -> parse("seed: 1")).keyPath());
        assertEquals("model.model_config.pet_config.pet_type", assertThrows(ConfigException.class,
                () -> parse("model: {model_config: {checkpoint_name_or_path: g, pet_config: {lora_rank: 8}}}")).keyPath());
    }

    @Test
    void setOverridesAreTypedAsYamlScalars() {
        RunConfig c = parse(ISSUE_EXAMPLE, "runner_config.batch_size=4", "lr_schedule.learning_rate=1e-4",
                "resume_training=true", "model.model_config.pet_config.target_modules=[c_attn, c_proj]",
                "train_dataset.data_loader.shuffle=false", "optimizer.max_grad_norm=0", "lr_schedule.type=linear");
        assertEquals(4, c.runner().batchSize());
        assertEquals(1e-4, c.lrSchedule().learningRate());
        assertTrue(c.resumeTraining());
        assertEquals(List.of("c_attn", "c_proj"), c.model().pet().config().get("target_modules"));
        assertFalse(c.trainDataset().shuffle());
        assertEquals(0.0, c.optimizer().maxGradNorm());
        assertEquals(LrScheduleConfig.Type.LINEAR, c.lrSchedule().type());
    }

    @Test
    void setOverrideCreatesSectionsAndIndexesLists() {
        RunConfig c = parse("model: {model_config: {checkpoint_name_or_path: g}}\ncallbacks: [{type: MFLossMonitor}]",
                "callbacks.0.per_print_times=7", "eval_dataset.data_loader.type=jsonl",
                "eval_dataset.data_loader.dataset_dir=/tmp/x.jsonl");
        assertEquals(7, c.callbacks().logSteps());
        assertEquals(DataLoaderConfig.Type.JSONL, c.evalDataset().type());
    }

    @Test
    void setOverrideOfUnknownKeyFailsAtBinding() {
        ConfigException e = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE, "runner_config.batch_sise=4"));
        assertEquals("runner_config.batch_sise", e.keyPath());
        ConfigException scalar = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE, "seed.x=1"));
        assertEquals("seed", scalar.keyPath());
        assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE, "no-equals-sign"));
    }

    @Test
    void duplicateKeysAndBadYamlAreErrors() {
        ConfigException dup = assertThrows(ConfigException.class, () -> parse("seed: 1\nseed: 2\n"));
        assertTrue(dup.getMessage().contains("test.yaml") && dup.getMessage().contains("seed"), dup.getMessage());
        ConfigException bad = assertThrows(ConfigException.class, () -> parse("model: [unclosed\n"));
        assertTrue(bad.getMessage().contains("invalid YAML at line"), bad.getMessage());
    }

    @Test
    void canonicalYamlRoundTripsAndDefaultsAreFilled(@TempDir Path dir) throws Exception {
        RunConfig c = parse(ISSUE_EXAMPLE);
        Path file = dir.resolve("resolved.yaml");
        Files.writeString(file, c.toYaml());
        assertEquals(c, RunConfigLoader.parse(Files.readString(file), "resolved.yaml", List.of()));
        // Loaded from the file, its relative output_dir resolves against the file's folder; absolute paths stay.
        RunConfig again = RunConfigLoader.load(file, List.of());
        assertEquals(dir.resolve("output/gpt2-lora"), again.outputDir());
        assertEquals(c.trainDataset(), again.trainDataset());
        RunConfig minimal = parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}");
        assertEquals(RunnerConfig.defaults(), minimal.runner());
        assertEquals(OptimizerConfig.defaults(), minimal.optimizer());
        assertEquals(CallbacksConfig.defaults(), minimal.callbacks());
        assertEquals(Device.CPU, minimal.device());
        assertNull(minimal.trainDataset());
        assertTrue(minimal.toYaml().contains("gradient_accumulation_steps: 1"), minimal.toYaml());
    }

    @Test
    void hashIgnoresResumeFlagButNotSettings() {
        RunConfig c = parse(ISSUE_EXAMPLE);
        assertEquals(c.hash(), parse(ISSUE_EXAMPLE, "resume_training=true").hash());
        assertNotEquals(c.hash(), parse(ISSUE_EXAMPLE, "lr_schedule.learning_rate=3e-4").hash());
        assertEquals(64, c.hash().length());
    }

    @Test
    void rejectsOversizedConfigFiles(@TempDir Path dir) throws Exception {
        Path big = dir.resolve("big.yaml");
        Files.write(big, new byte[(int) RunConfigLoader.MAX_CONFIG_BYTES + 1]);
        ConfigException e = assertThrows(ConfigException.class, () -> RunConfigLoader.load(big, List.of()));
        assertTrue(e.getMessage().contains("big.yaml"), e.getMessage());
    }

    @Test
    void suggestionsUseEditDistance() {
        assertEquals(1, Suggestions.distance("batch_sise", "batch_size"));
        assertEquals(3, Suggestions.distance("kitten", "sitting"));
        assertTrue(Suggestions.closest("zzzzzz", List.of("epochs")).isEmpty());
    }

    @Test
    void yamlAliasesAreRefusedWithTheirPlace() {
        String yaml = "defaults: &d ./out\n" + ISSUE_EXAMPLE.replace("output_dir: ./output/gpt2-lora", "output_dir: *d");
        ConfigException e = assertThrows(ConfigException.class, () -> parse(yaml));
        assertTrue(e.getMessage().contains("YAML alias *d at line 4, column 13 is not supported in run configs; "
                + "write the value out"), e.getMessage());
        ConfigException merge = assertThrows(ConfigException.class, () -> parse("base: &b {seed: 1}\nx:\n  <<: *b\n"));
        assertTrue(merge.getMessage().contains("YAML alias *b"), merge.getMessage());
    }

    @Test
    void anOverrideWithEmptyKeySegmentsIsRefused() {
        for (String bad : new String[] {"..=5", ".=5", "seed.=5", ".seed=5", "runner_config..epochs=5"}) {
            ConfigException e = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE, bad), bad);
            assertTrue(e.getMessage().contains("empty segment in override key"), bad + ": " + e.getMessage());
        }
    }

    @Test
    void overwriteAndResumeExcludeEachOtherAndNeitherChangesTheHash() {
        RunConfig c = parse(ISSUE_EXAMPLE);
        assertFalse(c.overwriteOutputDir());
        assertTrue(parse(ISSUE_EXAMPLE, "overwrite_output_dir=true").overwriteOutputDir());
        assertEquals(c.hash(), parse(ISSUE_EXAMPLE, "overwrite_output_dir=true").hash());
        assertEquals(c.hash(), parse(ISSUE_EXAMPLE, "output_dir=/elsewhere").hash(), "a moved run resumes");
        ConfigException e = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE, "overwrite_output_dir=true",
                "resume_training=true"));
        assertTrue(e.getMessage().startsWith("overwrite_output_dir: true together with resume_training: true"),
                e.getMessage());
    }

    @Test
    void anOutputDirWithASchemeIsAUriKeptAsWrittenAndStagedLocally(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("run.yaml");
        Files.writeString(file, ISSUE_EXAMPLE.replace("output_dir: ./output/gpt2-lora",
                "output_dir: hdfs://namenode:8020/runs//a"));
        RunConfig c = RunConfigLoader.load(file, List.of());
        // Not resolved against the config's folder, and the authority survives (a Path would drop the "//").
        assertEquals(java.net.URI.create("hdfs://namenode:8020/runs/a"), c.outputUri());
        assertTrue(c.outputDir().isAbsolute() && !c.outputDir().startsWith(dir), c.outputDir().toString());
        assertEquals(c, RunConfigLoader.parse(c.toYaml(), "resolved.yaml", List.of()), "round trip through YAML");
        assertEquals(c.hash(), parse(ISSUE_EXAMPLE).hash(), "where the run is published is not its identity");
        assertNotEquals(c.outputDir(), parse(ISSUE_EXAMPLE, "output_dir=s3a://bucket/runs/a").outputDir());
        assertEquals(java.net.URI.create("file:/tmp/run"), parse(ISSUE_EXAMPLE, "output_dir=file:/tmp/run")
                .outputUri());
        assertNull(parse(ISSUE_EXAMPLE, "output_dir=C:/runs/a").outputUri(), "a drive letter is a path");
        ConfigException local = assertThrows(ConfigException.class, c::requireLocalOutput);
        assertTrue(local.getMessage().contains("hdfs://namenode:8020/runs/a is a Hadoop FileSystem URI"),
                local.getMessage());
        ConfigException bad = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE,
                "output_dir=hdfs://name node/x"));
        assertTrue(bad.getMessage().startsWith("output_dir: 'hdfs://name node/x' is not a valid URI"),
                bad.getMessage());
        ConfigException opaque = assertThrows(ConfigException.class, () -> parse(ISSUE_EXAMPLE,
                "output_dir=s3a:bucket"));
        assertTrue(opaque.getMessage().contains("has no absolute path"), opaque.getMessage());
    }

    private static final String QUANTIZED = "model: {model_config: {checkpoint_name_or_path: gpt2-tiny, "
            + "quantization: {bits: 8, block_size: 128, symmetric: false, compute: fp32, kernel: dequantize, "
            + "exclude: [c_proj], lm_head: true, embeddings: true}}}";

    @Test
    void bindsQuantizationWithDefaultsForOmittedKeys() {
        var q = parse(QUANTIZED).model().modelConfig().quantization();
        assertEquals(new dev.pet.onnx.quant.QuantSpec(8, 128, false, dev.pet.onnx.quant.QuantSpec.Compute.FP32,
                dev.pet.onnx.quant.QuantSpec.Kernel.DEQUANTIZE), q.spec());
        assertEquals(List.of("c_proj"), q.modules().excludeNames());
        assertTrue(q.lmHead());
        assertTrue(q.embeddings());
        var defaults = parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny, quantization: {}}}")
                .model().modelConfig().quantization();
        assertEquals(dev.pet.onnx.quant.QuantSpec.defaults(), defaults.spec());
        assertEquals("all-linear", defaults.modules().targetModulesValue());
        assertFalse(defaults.lmHead(), "the output head stays float unless asked");
        assertFalse(defaults.embeddings(), "the embedding table stays float unless asked");
        var integer = parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny, quantization: {kernel:"
                + " matmul_integer}}}").model().modelConfig().quantization();
        assertEquals(8, integer.spec().bits(), "kernel matmul_integer defaults to 8 bits");
        assertTrue(integer.spec().perChannel());
        assertFalse(integer.toMap().containsKey("block_size"), "a per-channel run records no block size, so it"
                + " resumes");
        assertFalse(defaults.toMap().containsKey("embeddings"),
                "unset, it is not recorded: runs recorded before the option keep their config hash");
        assertEquals(null, parse("model: {model_config: {checkpoint_name_or_path: gpt2-tiny}}").model().modelConfig()
                .quantization(), "no quantization unless asked");
        assertEquals(Map.of("bits", 8, "block_size", 128, "symmetric", false, "compute", "fp32", "kernel",
                "dequantize", "include", "all-linear", "exclude", List.of("c_proj"), "lm_head", true, "embeddings",
                true), ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) RunConfigLoader
                .toMap(parse(QUANTIZED)).get("model")).get("model_config")).get("quantization")));
    }

    @Test
    void badQuantizationSettingsNameTheKey() {
        String base = "model: {model_config: {checkpoint_name_or_path: gpt2-tiny, quantization: {%s}}}";
        ConfigException bits = assertThrows(ConfigException.class, () -> parse(base.formatted("bits: 3")));
        assertEquals("model.model_config.quantization.bits: must be 4 or 8, found 3", bits.getMessage());
        ConfigException block = assertThrows(ConfigException.class, () -> parse(base.formatted("block_size: 48")));
        assertEquals("model.model_config.quantization.block_size: must be one of [32, 64, 128], found 48",
                block.getMessage());
        assertEquals("model.model_config.quantization.compute",
                assertThrows(ConfigException.class, () -> parse(base.formatted("compute: fp16"))).keyPath());
        assertEquals("model.model_config.quantization.kernel: must be matmul_nbits, dequantize or matmul_integer,"
                + " found 'nbits'",
                assertThrows(ConfigException.class, () -> parse(base.formatted("kernel: nbits"))).getMessage());
        assertEquals("model.model_config.quantization.compute: int8 needs kernel matmul_nbits: kernel dequantize "
                + "multiplies in float32 (set compute: fp32, or kernel: matmul_nbits)",
                assertThrows(ConfigException.class, () -> parse(base.formatted("kernel: dequantize, compute: int8")))
                        .getMessage());
        assertEquals("model.model_config.quantization.block_size: does not apply to kernel matmul_integer, which"
                + " has one scale per output channel; remove it", assertThrows(ConfigException.class,
                        () -> parse(base.formatted("kernel: matmul_integer, block_size: 64"))).getMessage());
        assertEquals("model.model_config.quantization.bits: must be 8 with kernel matmul_integer (ONNX Runtime's int8"
                + " GEMM), found 4 (4 bits needs kernel matmul_nbits)", assertThrows(ConfigException.class,
                        () -> parse(base.formatted("kernel: matmul_integer, bits: 4"))).getMessage());
        assertEquals("model.model_config.quantization.symmetric", assertThrows(ConfigException.class,
                () -> parse(base.formatted("kernel: matmul_integer, symmetric: false"))).keyPath());
        assertEquals("model.model_config.quantization.compute", assertThrows(ConfigException.class,
                () -> parse(base.formatted("kernel: matmul_integer, compute: fp32"))).keyPath());
        ConfigException cuda = assertThrows(ConfigException.class, () -> parse(base.formatted("kernel: matmul_integer")
                + "\ndevice: cuda"));
        assertEquals("model.model_config.quantization.kernel", cuda.keyPath());
        assertTrue(cuda.getMessage().contains("no CUDA kernel"), cuda.getMessage());
        assertEquals("model.model_config.quantization.bitz",
                assertThrows(ConfigException.class, () -> parse(base.formatted("bitz: 4"))).keyPath());
        assertEquals("model.model_config.quantization.include",
                assertThrows(ConfigException.class, () -> parse(base.formatted("include: '(['"))).keyPath());
    }
}
