package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.ModelRequest;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.io.SafeTensors;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The user path: a PEFT PREFIX_TUNING adapter, written here as PEFT writes it, exported with
 * {@code export --format merged-onnx --from ADAPTER} by a run config that names only the method, computes what PEFT
 * computes. PEFT's route is reproduced with the base model's own KV-cache graph: the prefix fed as past keys/values
 * (prompt_embeddings viewed [P, 2L, heads, hd]), an attention mask of P + T ones and real tokens at positions
 * P..P+T-1. Tolerance 1e-4 on logits of order 1 (float32 on both routes).
 */
class PeftPrefixExportTest {
    @TempDir
    Path dir;

    @Test
    void aPeftPrefixAdapterExportsToTheLogitsPeftComputes() throws Exception {
        long seed = 3;
        int p = 4;
        Gpt2Weights w = Gpt2Provider.loadWeights(new ModelRequest("gpt2-tiny", Map.of(), seed));
        Gpt2Config c = w.config();
        int layers = c.nLayer();
        int heads = c.nHead();
        int hd = c.headDim();
        long width = (long) layers * 2 * c.nEmbd();
        float[] table = new float[(int) (p * width)];
        Random r = new Random(9);
        for (int i = 0; i < table.length; i++) {
            table[i] = (float) r.nextGaussian();
        }
        Path adapter = dir.resolve("peft-prefix");
        Files.createDirectories(adapter);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "PREFIX_TUNING");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("num_virtual_tokens", p);
        cfg.put("token_dim", c.nEmbd());
        cfg.put("num_transformer_submodules", 1);
        cfg.put("num_attention_heads", heads);
        cfg.put("num_layers", layers);
        cfg.put("encoder_hidden_size", c.nEmbd());
        cfg.put("prefix_projection", false);
        cfg.put("inference_mode", true);
        Files.writeString(adapter.resolve("adapter_config.json"), new ObjectMapper().writeValueAsString(cfg));
        SafeTensors.write(adapter.resolve("adapter_model.safetensors"),
                Map.of("prompt_embeddings", Tensor.ofFloats(table, p, width)), Map.of("format", "pt"));

        Path corpus = dir.resolve("unused.txt");
        Files.writeString(corpus, "not read by export\n");
        RunConfig config = Trainer.builder().model("gpt2-tiny").petMethod("prefix_tuning").petConfig(Map.of())
                .trainDataset(corpus).seqLength(16).outputDir(dir.resolve("run")).seed(seed).build().config();
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(dev.pet.runtime.plugin.PluginKind.ALL,
                getClass().getClassLoader(), null), new TrainingListener() { }, TokenCache.defaultCache(),
                new PrintStream(System.out));
        Path merged = dir.resolve("merged.onnx");
        new DefaultPetEngine().export(new ExportRequest(config, adapter, ExportRequest.Format.MERGED_ONNX, merged,
                false),
                env);

        long[] ids = {464, 3290, 286, 262, 1578, 11};
        int t = ids.length;
        long[] mask = new long[t];
        Arrays.fill(mask, 1);
        Map<String, Tensor> peft = new HashMap<>();
        peft.put(Gpt2Graph.INPUT_IDS, Tensor.ofLongs(ids, 1, t));
        long[] prefixedMask = new long[p + t];
        Arrays.fill(prefixedMask, 1);
        peft.put(Gpt2Graph.ATTENTION_MASK, Tensor.ofLongs(prefixedMask, 1, p + t));
        long[] positions = new long[t];
        for (int i = 0; i < t; i++) {
            positions[i] = p + i;
        }
        peft.put(Gpt2Graph.POSITION_IDS, Tensor.ofLongs(positions, 1, t));
        for (int l = 0; l < layers; l++) {
            for (int kv = 0; kv < 2; kv++) {
                float[] past = new float[heads * p * hd];
                for (int h = 0; h < heads; h++) {
                    for (int v = 0; v < p; v++) {
                        for (int j = 0; j < hd; j++) {
                            past[(h * p + v) * hd + j] = table[(int) (v * width + ((2L * l + kv) * heads + h) * hd
                                    + j)];
                        }
                    }
                }
                peft.put(kv == 0 ? Gpt2Graph.pastKey(l) : Gpt2Graph.pastValue(l),
                        Tensor.ofFloats(past, 1, heads, p, hd));
            }
        }
        try (OrtEngine e = OrtEngine.cpu();
                CompiledGraph exported = e.compile(OnnxFiles.read(merged));
                CompiledGraph reference = e.compile(Gpt2Graph.build(w, CausalLmGraphOptions.inference()).model())) {
            // Exports are the generation form: the caller numbers its real tokens from 0 with an empty cache, and
            // the prefix (baked into the graph) shifts them to P.. as PEFT does.
            Map<String, Tensor> feeds = new HashMap<>();
            feeds.put(Gpt2Graph.INPUT_IDS, Tensor.ofLongs(ids, 1, t));
            feeds.put(Gpt2Graph.ATTENTION_MASK, Tensor.ofLongs(mask, 1, t));
            long[] own = new long[t];
            for (int i = 0; i < t; i++) {
                own[i] = i;
            }
            feeds.put(Gpt2Graph.POSITION_IDS, Tensor.ofLongs(own, 1, t));
            for (int l = 0; l < layers; l++) {
                feeds.put(Gpt2Graph.pastKey(l), Tensor.ofFloats(new float[0], 1, heads, 0, hd));
                feeds.put(Gpt2Graph.pastValue(l), Tensor.ofFloats(new float[0], 1, heads, 0, hd));
            }
            float[] got = exported.run(feeds).get(Gpt2Graph.LOGITS).toFloatArray();
            float[] expected = reference.run(peft).get(Gpt2Graph.LOGITS).toFloatArray();
            double d = 0;
            for (int i = 0; i < got.length; i++) {
                d = Math.max(d, Math.abs(got[i] - expected[i]));
            }
            assertTrue(d <= 1e-4, "max |exported - PEFT route| = " + d);
        }
    }
}
