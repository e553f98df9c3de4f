package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelRequest;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.PetModel;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtAdapter;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.tensor.DataType;
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
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code export --format ort-adapter} of a Llama LoRA adapter (every linear of llama-tiny, GQA): ONNX Runtime applies
 * the exported {@code .onnx_adapter} to the exported base graph and computes what the {@code merged-onnx} export of the
 * same adapter computes. Both exports come from one PEFT adapter directory, so the test covers the file round trip
 * too. Tolerance 1e-5 on logits (and relative to the largest value on the larger cache entries): the two graphs differ
 * only in the float32 rounding of adding B·A to W before or after the matmul.
 */
class LlamaOrtAdapterExportTest {
    @TempDir
    Path dir;

    @Test
    void theOrtAdapterOnTheExportedGraphComputesTheMergedExport() throws Exception {
        Path corpus = dir.resolve("unused.txt");
        Files.writeString(corpus, "not read\n");
        RunConfig config = Trainer.builder().model("llama-tiny").petMethod("lora").petConfig(Map.of("r", 4,
                "target_modules", "all-linear")).trainDataset(corpus).seqLength(16).outputDir(dir.resolve("run"))
                .seed(5).build().config();
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL, getClass().getClassLoader(),
                null), new TrainingListener() { }, TokenCache.defaultCache(), new PrintStream(System.out));
        // A trained-looking adapter: every factor random, so B·A is far from 0 in every module.
        RunSetup s = new RunSetup(config, env, ModelRequest.GraphForm.GENERATION);
        Random r = new Random(11);
        Map<String, Tensor> values = new LinkedHashMap<>();
        s.pet.trainableTensors().forEach((name, t) -> {
            float[] v = new float[(int) t.elementCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.3 * r.nextGaussian());
            }
            values.put(name, Tensor.ofFloats(v, t.shape()));
        });
        assertEquals(7 * 2 * 2, values.size(), "A and B of 7 linears in 2 layers");
        PetModel trained = s.pet.withTrainables(values);
        Path adapter = dir.resolve("adapter");
        s.adapter.saveAdapter(trained, values, adapter);

        DefaultPetEngine engine = new DefaultPetEngine();
        Path ort = dir.resolve("ort");
        Path merged = dir.resolve("merged.onnx");
        engine.export(new ExportRequest(config, adapter, ExportRequest.Format.ORT_ADAPTER, ort, false), env);
        engine.export(new ExportRequest(config, adapter, ExportRequest.Format.MERGED_ONNX, merged, false), env);

        Map<String, Tensor> feeds = promptFeeds(s.base.anatomy(), new long[] {256, 72, 101, 108, 108, 111, 33});
        try (OrtEngine e = OrtEngine.cpu(); CompiledGraph mergedGraph = e.compile(OnnxFiles.read(merged));
                CompiledGraph serving = e.compile(OnnxFiles.read(ort.resolve(DefaultPetEngine.ORT_MODEL)));
                OrtAdapter active = OrtAdapter.load("trained", ort.resolve(DefaultPetEngine.ORT_ADAPTER))) {
            Map<String, Tensor> expected = mergedGraph.run(feeds);
            Map<String, Tensor> got = serving.run(feeds, active);
            assertEquals(expected.keySet(), got.keySet());
            for (String out : expected.keySet()) {
                float[] want = expected.get(out).toFloatArray();
                double scale = 1;
                for (float v : want) {
                    scale = Math.max(scale, Math.abs(v));
                }
                double d = maxAbsDiff(got.get(out).toFloatArray(), want);
                assertTrue(d <= 1e-5 * scale, out + ": max |ort adapter - merged| = " + d + " at scale " + scale);
            }
            String logits = CausalLmNames.LOGITS;
            assertTrue(maxAbsDiff(serving.run(feeds).get(logits).toFloatArray(),
                    expected.get(logits).toFloatArray()) > 1e-3, "without the adapter the served graph is the base");
        }
    }

    /** The first generation step: the whole prompt, positions from 0, an empty cache per layer. */
    private static Map<String, Tensor> promptFeeds(ModelAnatomy a, long[] ids) {
        int t = ids.length;
        long[] mask = new long[t];
        long[] positions = new long[t];
        for (int i = 0; i < t; i++) {
            mask[i] = 1;
            positions[i] = i;
        }
        Map<String, Tensor> feeds = new HashMap<>();
        feeds.put(CausalLmNames.INPUT_IDS, Tensor.ofLongs(ids, 1, t));
        feeds.put(CausalLmNames.ATTENTION_MASK, Tensor.ofLongs(mask, 1, t));
        feeds.put(CausalLmNames.POSITION_IDS, Tensor.ofLongs(positions, 1, t));
        for (int l = 0; l < a.layers().size(); l++) {
            feeds.put(CausalLmNames.pastKey(l), Tensor.zeros(DataType.FLOAT, 1, a.numKeyValueHeads(), 0, a.headDim()));
            feeds.put(CausalLmNames.pastValue(l), Tensor.zeros(DataType.FLOAT, 1, a.numKeyValueHeads(), 0,
                    a.headDim()));
        }
        return feeds;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }
}
