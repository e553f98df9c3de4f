package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.ModelRequest;
import dev.pet.api.testkit.PeftPrefixReference;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.NaiveGpt2;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.onnx.CausalLmNames;
import dev.pet.llama.LlamaCheckpoint;
import dev.pet.llama.LlamaConfig;
import dev.pet.llama.LlamaProvider;
import dev.pet.llama.LlamaWeights;
import dev.pet.llama.NaiveLlama;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The user path on each family: a PEFT PREFIX_TUNING adapter, written here as PEFT writes it, used by a run
 * config that names only the method, computes what PEFT + transformers compute ({@link PeftPrefixReference}, the
 * family's float64 reference) in every form the runtime builds from it: the model {@code pet eval} runs, the
 * {@code export --format merged-onnx --from ADAPTER} graph (generation form: the caller numbers its tokens from 0 with
 * an empty cache), and greedy KV-cache generation with that export. The Llama case has grouped-query attention
 * (prefixes per key/value head) and weights at ten times the preset's scale, so rotary positions matter. Tolerance
 * 1e-4 on logits of order 1 (float32 against float64).
 */
class PeftPrefixExportTest {
    private static final double TOLERANCE = 1e-4;
    private static final long SEED = 3;
    private static final int P = 4;

    @TempDir
    Path dir;

    /** A base model as a run names it, the shape of its prefixes, its reference and an input inside its vocabulary. */
    private record Family(String model, int layers, int kvHeads, int headDim, PeftPrefixReference reference,
            long[] ids) {
    }

    private Family family(String name) {
        if (name.equals("gpt2")) {
            Gpt2Config c = Gpt2Config.preset("gpt2-tiny");
            return new Family("gpt2-tiny", c.nLayer(), c.nHead(), c.headDim(), new NaiveGpt2(
                    Gpt2Provider.loadWeights(new ModelRequest("gpt2-tiny", Map.of(), SEED))),
                    new long[] {464, 3290, 286, 262, 1578, 11});
        }
        LlamaWeights w = LlamaProvider.loadWeights(new ModelRequest("llama-tiny", Map.of("initializer_range", 0.2),
                SEED));
        Path checkpoint = dir.resolve("llama-checkpoint");
        LlamaCheckpoint.save(w, checkpoint);
        LlamaConfig c = w.config();
        return new Family(checkpoint.toString(), c.numHiddenLayers(), c.numKeyValueHeads(), c.headDim(),
                new NaiveLlama(w), new long[] {72, 101, 108, 108, 111, 44});
    }

    /** PEFT's files: {@code prompt_embeddings} [P, layers·2·token_dim] and PrefixTuningConfig's fields. */
    private static float[] writePeftAdapter(Family f, Path adapter) throws Exception {
        long tokenDim = (long) f.kvHeads() * f.headDim();
        long width = f.layers() * 2L * tokenDim;
        float[] table = new float[(int) (P * width)];
        Random r = new Random(9);
        for (int i = 0; i < table.length; i++) {
            table[i] = (float) r.nextGaussian();
        }
        Files.createDirectories(adapter);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "PREFIX_TUNING");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("num_virtual_tokens", P);
        cfg.put("token_dim", tokenDim);
        cfg.put("num_transformer_submodules", 1);
        cfg.put("num_attention_heads", f.kvHeads());
        cfg.put("num_layers", f.layers());
        cfg.put("encoder_hidden_size", tokenDim);
        cfg.put("prefix_projection", false);
        cfg.put("inference_mode", true);
        Files.writeString(adapter.resolve("adapter_config.json"), new ObjectMapper().writeValueAsString(cfg));
        SafeTensors.write(adapter.resolve("adapter_model.safetensors"),
                Map.of("prompt_embeddings", Tensor.ofFloats(table, P, width)), Map.of("format", "pt"));
        return table;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void aPeftPrefixAdapterMeansWhatPeftComputesInEvalExportAndGeneration(String name) throws Exception {
        Family f = family(name);
        Path adapter = dir.resolve("peft-prefix");
        float[] table = writePeftAdapter(f, adapter);
        Path corpus = dir.resolve("unused.txt");
        Files.writeString(corpus, "not read\n");
        RunConfig config = Trainer.builder().model(f.model()).petMethod("prefix_tuning").petConfig(Map.of())
                .trainDataset(corpus).seqLength(16).outputDir(dir.resolve("run")).seed(SEED).build().config();
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL, getClass().getClassLoader(),
                null), new TrainingListener() { }, TokenCache.defaultCache(), new PrintStream(System.out));
        Path merged = dir.resolve("merged.onnx");
        new DefaultPetEngine().export(new ExportRequest(config, adapter, ExportRequest.Format.MERGED_ONNX, merged,
                false), env);
        Model evalModel = new RunSetup(config, env).inferenceModel(adapter);

        long[] ids = f.ids();
        int t = ids.length;
        double[] peft = PeftPrefixReference.flatten(f.reference().logits(table, P, ids, null, P));
        long[] ones = new long[t];
        Arrays.fill(ones, 1);
        try (OrtEngine e = OrtEngine.cpu(); CompiledGraph eval = e.compile(evalModel);
                CompiledGraph exported = e.compile(OnnxFiles.read(merged))) {
            float[] evalLogits = eval.run(Map.of(CausalLmNames.INPUT_IDS, Tensor.ofLongs(ids, 1, t),
                    CausalLmNames.ATTENTION_MASK, Tensor.ofLongs(ones, 1, t))).get(CausalLmNames.LOGITS)
                    .toFloatArray();
            assertClose("eval model", evalLogits, peft);

            Map<String, Tensor> feeds = new HashMap<>();
            feeds.put(CausalLmNames.INPUT_IDS, Tensor.ofLongs(ids, 1, t));
            feeds.put(CausalLmNames.ATTENTION_MASK, Tensor.ofLongs(ones, 1, t));
            long[] own = new long[t];
            for (int i = 0; i < t; i++) {
                own[i] = i;
            }
            feeds.put(CausalLmNames.POSITION_IDS, Tensor.ofLongs(own, 1, t));
            for (int l = 0; l < f.layers(); l++) {
                feeds.put(CausalLmNames.pastKey(l), Tensor.ofFloats(new float[0], 1, f.kvHeads(), 0, f.headDim()));
                feeds.put(CausalLmNames.pastValue(l), Tensor.ofFloats(new float[0], 1, f.kvHeads(), 0, f.headDim()));
            }
            assertClose("merged-onnx export", exported.run(feeds).get(CausalLmNames.LOGITS).toFloatArray(), peft);

            int steps = 5;
            long[] generated = new Generator(exported, 64).generate(ids, GenerationConfig.greedy(steps));
            assertEquals(steps, generated.length);
            assertArrayEquals(greedy(f.reference(), table, ids, steps), generated,
                    "KV-cache greedy generation = PEFT's greedy continuation");
        }
    }

    /** PEFT's greedy continuation: each next token is the argmax of the reference's last row. */
    private static long[] greedy(PeftPrefixReference reference, float[] table, long[] prompt, int steps) {
        long[] ids = prompt.clone();
        long[] out = new long[steps];
        for (int s = 0; s < steps; s++) {
            double[][] rows = reference.logits(table, P, ids, null, P);
            double[] last = rows[rows.length - 1];
            int best = 0;
            for (int v = 1; v < last.length; v++) {
                if (last[v] > last[best]) {
                    best = v;
                }
            }
            out[s] = best;
            ids = Arrays.copyOf(ids, ids.length + 1);
            ids[ids.length - 1] = best;
        }
        return out;
    }

    private static void assertClose(String what, float[] got, double[] expected) {
        assertEquals(expected.length, got.length, what + ": logit count");
        double d = 0;
        for (int i = 0; i < got.length; i++) {
            d = Math.max(d, Math.abs(got[i] - expected[i]));
        }
        assertTrue(d <= TOLERANCE, what + ": max |pet - PEFT| = " + d);
    }
}
