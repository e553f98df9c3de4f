package dev.pet.gpt2.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.api.onnximport.OnnxImportException;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.gpt2.Gpt2Tokenizers;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Mask;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Projection;
import dev.pet.gpt2.onnx.TorchStyleGpt2.Style;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.io.OnnxFiles;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.Tensor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Exports on disk as PyTorch and Optimum write them (a bare {@code .onnx}, a directory with external data and
 * {@code config.json}, the with-past decoder), imported through the provider: logits equal our own graph's within
 * 1e-5 (same float32 math in another op order; observed ~1e-6), the graph's contract kept, bad files refused with
 * the file and tensor named.
 */
class Gpt2OnnxExportImportTest {
    private static final Gpt2Config CONFIG = Gpt2Config.of(512, 32, 64, 2, 4);
    private static final Gpt2Weights WEIGHTS = TorchStyleGpt2.weights(CONFIG, 11);
    private static final long[][] IDS = {{464, 207, 86, 218, 180, 62, 262, 169, 329, 13},
        {50, 50, 50, 40, 88, 257, 132, 11, 104, 0}};
    private static final long[][] ONES = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    private static final Style WITH_PAST_21 = new Style(21, Projection.MATMUL, true, Mask.TRILU, true, true, true);
    private static final Style WITH_PAST_14 = new Style(14, Projection.CONV1D_GEMM, false, Mask.WHERE, false, true,
            true);

    private static float[] ours() {
        return Ort.logits(Gpt2Graph.build(WEIGHTS, CausalLmGraphOptions.training()).model(), IDS, ONES);
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static Path optimumDirectory(Path dir, Style style, boolean config) throws Exception {
        Files.createDirectories(dir);
        OnnxFiles.writeWithExternalData(TorchStyleGpt2.build(WEIGHTS, style), dir.resolve("model.onnx"),
                "model.onnx_data", 1024);
        if (config) {
            Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"gpt2\", \"n_head\": 4, \"n_embd\": 64, "
                    + "\"n_layer\": 2, \"n_positions\": 32, \"vocab_size\": 512, \"use_cache\": true}");
        }
        return dir;
    }

    @Test
    void withPastDecoderKeepsItsContractAndRunsWithAndWithoutACache() {
        for (Style s : List.of(WITH_PAST_21, WITH_PAST_14)) {
            Gpt2OnnxImporter.Result r = Gpt2OnnxImporter.importModel(TorchStyleGpt2.build(WEIGHTS, s), s.toString(),
                    Gpt2Tokenizers.r50k());
            assertTrue(r.report().complete(), r.report().describe());
            Model m = r.model().model();
            List<String> inputs = m.graph().inputs().stream().map(Value::name).toList();
            List<String> outputs = m.graph().outputs().stream().map(Value::name).toList();
            assertEquals(List.of("input_ids", "attention_mask", "past_key_values.0.key", "past_key_values.0.value",
                    "past_key_values.1.key", "past_key_values.1.value"), inputs);
            assertTrue(outputs.containsAll(List.of("logits", "present.0.key", "present.1.value")), outputs.toString());
            // Without a cache: the training form.
            Map<String, float[]> full = Ort.run(m, IDS, ONES);
            double d = maxDiff(ours(), full.get("logits"));
            assertTrue(d <= 1e-5, s + ": logits differ by " + d);
            // With a cache of the first 6 tokens, the last 4 give the same logits as the full run.
            int p = 6;
            long[][] head = new long[2][p];
            long[][] tail = new long[2][IDS[0].length - p];
            for (int row = 0; row < 2; row++) {
                System.arraycopy(IDS[row], 0, head[row], 0, p);
                System.arraycopy(IDS[row], p, tail[row], 0, tail[row].length);
            }
            Map<String, float[]> first = Ort.run(m, head, new long[][] {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}});
            Map<String, Tensor> cache = new LinkedHashMap<>();
            for (int l = 0; l < 2; l++) {
                for (String kind : List.of("key", "value")) {
                    cache.put("past_key_values." + l + "." + kind, Tensor.ofFloats(first.get("present." + l + "."
                            + kind), 2, 4, p, 16));
                }
            }
            // ONNX Runtime's Java API feeds no input that has a default: the export form requires the cache again.
            Model exported = DecoderImporter.requireGraphInputs(m.copy());
            float[] step = Ort.run(exported, tail, ONES, cache).get("logits");
            int vocab = 512;
            double worst = 0;
            for (int row = 0; row < 2; row++) {
                for (int t = 0; t < tail[0].length; t++) {
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, Math.abs(step[(row * tail[0].length + t) * vocab + v]
                                - full.get("logits")[(row * IDS[0].length + p + t) * vocab + v]));
                    }
                }
            }
            assertTrue(worst <= 1e-5, s + ": cached step differs by " + worst);
        }
    }

    @Test
    void optimumDirectoryWithExternalDataLoadsThroughTheProvider(@TempDir Path tmp) throws Exception {
        Path dir = optimumDirectory(tmp.resolve("gpt2-onnx"), WITH_PAST_14, true);
        assertTrue(Files.size(dir.resolve("model.onnx_data")) > 100_000, "weights must be external");
        PretrainedModel pm = new Gpt2Provider().load(ModelRequest.of(dir.toString()));
        assertEquals("gpt2", pm.providerId());
        assertEquals(4L, pm.anatomy().numHeads());
        assertEquals(32L, pm.maxPositions());
        double d = maxDiff(ours(), Ort.logits(pm.model(), IDS, ONES));
        assertTrue(d <= 1e-5, "logits differ by " + d);
        assertTrue(pm.config().get(PretrainedModel.IMPORT_REPORT).toString().contains("every part recognised"));
        // The bare file, too; without config.json the family comes from the graph's names.
        Files.delete(dir.resolve("config.json"));
        PetAdapters registry = new PetAdapters(List.of(), List.of(new OtherFamily(), new Gpt2Provider()));
        PretrainedModel viaGraph = registry.getPretrainedModel("other", ModelRequest.of(
                dir.resolve("model.onnx").toString()));
        assertEquals("gpt2", viaGraph.providerId());
        assertTrue(maxDiff(ours(), Ort.logits(viaGraph.model(), IDS, ONES)) <= 1e-5);
    }

    /** A second family, so that routing by config or graph is a real choice. */
    private static final class OtherFamily implements ModelProvider {
        @Override
        public String id() {
            return "other";
        }

        @Override
        public java.util.Set<String> aliases() {
            return java.util.Set.of();
        }

        @Override
        public PretrainedModel load(ModelRequest request) {
            throw new AssertionError("routed to the wrong family: " + request.nameOrPath());
        }
    }

    @Test
    void configModelTypeWithoutAnInstalledFamilyIsNamed(@TempDir Path tmp) throws Exception {
        Path dir = optimumDirectory(tmp.resolve("m"), WITH_PAST_14, true);
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"bert\"}");
        PetAdapters registry = new PetAdapters(List.of(), List.of(new Gpt2Provider()));
        PetException e = assertThrows(PetException.class,
                () -> registry.getPretrainedModel("gpt2", ModelRequest.of(dir.toString())));
        assertTrue(e.getMessage().contains("model_type 'bert'"), e.getMessage());
    }

    @Test
    void badExternalDataNamesTheFileAndTheTensor(@TempDir Path tmp) throws Exception {
        // Outside the folder: the location rewritten in place (same length keeps the protobuf valid).
        Path outside = optimumDirectory(tmp.resolve("outside"), WITH_PAST_14, false);
        byte[] bytes = Files.readAllBytes(outside.resolve("model.onnx"));
        String text = new String(bytes, StandardCharsets.ISO_8859_1).replace("model.onnx_data", "../odel.onnx_da");
        Files.write(outside.resolve("model.onnx"), text.getBytes(StandardCharsets.ISO_8859_1));
        assertRefused(outside, "model.onnx", "must be a relative path inside the model's folder");
        // A missing data file.
        Path missing = optimumDirectory(tmp.resolve("missing"), WITH_PAST_14, false);
        Files.delete(missing.resolve("model.onnx_data"));
        assertRefused(missing, "model.onnx", "does not exist next to the model");
        // A data file too short for the tensors it should hold.
        Path shortData = optimumDirectory(tmp.resolve("short"), WITH_PAST_14, false);
        byte[] data = Files.readAllBytes(shortData.resolve("model.onnx_data"));
        Files.write(shortData.resolve("model.onnx_data"), java.util.Arrays.copyOf(data, data.length / 2));
        assertRefused(shortData, "model.onnx", "tensor '");
    }

    private static void assertRefused(Path dir, String file, String what) {
        PetException e = assertThrows(PetException.class, () -> new Gpt2Provider().load(ModelRequest.of(
                dir.toString())));
        assertTrue(e.getMessage().contains(dir.resolve(file).toString()) && e.getMessage().contains(what),
                e.getMessage());
    }

    @Test
    void graphWithoutLogitsIsRefusedNamingItsOutputs(@TempDir Path tmp) throws Exception {
        // GPT2Model (no LM head): the graph ends at the final hidden state.
        Model m = TorchStyleGpt2.build(WEIGHTS, WITH_PAST_14);
        Graph g = m.graph();
        Value logits = g.requireValue("logits");
        Value hidden = logits.producer().input(0);
        g.clearOutputs();
        g.addOutput(hidden);
        hidden.rename("last_hidden_state");
        g.removeUnused();
        Path file = tmp.resolve("gpt2-base.onnx");
        OnnxFiles.write(m, file);
        OnnxImportException e = assertThrows(OnnxImportException.class,
                () -> new Gpt2Provider().load(ModelRequest.of(file.toString())));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("no logits output")
                && e.getMessage().contains("'last_hidden_state'"), e.getMessage());
    }

    @Test
    void customDomainFusedAttentionIsRefusedWithAReport() {
        Model m = TorchStyleGpt2.build(WEIGHTS, WITH_PAST_21);
        Graph g = m.graph();
        m.opsets().put("com.microsoft", 1L);
        // Replace block 0's Softmax by a contrib op, as an ORT-optimised export does for fused attention.
        Node softmax = g.nodes().stream().filter(n -> n.opType().equals("Softmax")).findFirst().orElseThrow();
        Node fused = g.addNode("FusedSoftmax", "com.microsoft", "/transformer/h.0/attn/FusedSoftmax",
                List.of(softmax.input(0)), List.of(g.uniqueName("fused_probs")), List.of());
        g.replaceAllUses(softmax.output(0), fused.output(0));
        g.removeNode(softmax);
        OnnxImportException e = assertThrows(OnnxImportException.class, () -> Gpt2OnnxImporter.importModel(m,
                "fused.onnx", Gpt2Tokenizers.r50k()));
        assertTrue(e.getMessage().contains("com.microsoft.FusedSoftmax=1"), e.getMessage());
        assertTrue(e.report().unrecognised().containsKey("operators"));
        // What was found is still listed.
        assertTrue(e.report().recognised().containsKey("input_ids"), e.report().describe());
    }

    @Test
    void encoderGraphIsNotTakenForGpt2(@TempDir Path tmp) throws Exception {
        // A BERT-style export: encoder module names, no causal mask, no config.json.
        Model m = TorchStyleGpt2.build(WEIGHTS, new Style(17, Projection.MATMUL, true, Mask.TRILU, false, false));
        Graph g = m.graph();
        for (Node n : g.nodes()) {
            n.setName(n.name().replace("/transformer/h.", "/bert/encoder/layer.").replace("/attn/", "/attention/"));
        }
        for (String init : new ArrayList<>(g.initializers().keySet())) {
            g.requireValue(init).rename(init.replace("transformer.h.", "bert.encoder.layer."));
        }
        Path file = tmp.resolve("encoder.onnx");
        OnnxFiles.write(m, file);
        assertFalse(new Gpt2Provider().recognisesOnnx(m));
        PetAdapters registry = new PetAdapters(List.of(), List.of(new Gpt2Provider()));
        OnnxImportException e = assertThrows(OnnxImportException.class,
                () -> registry.getPretrainedModel("gpt2", ModelRequest.of(file.toString())));
        assertTrue(e.getMessage().contains("no linear module of a transformer block was recognised"),
                e.getMessage());
        assertTrue(e.report().notes().stream().anyMatch(s -> s.startsWith("linear not attributed")),
                e.report().describe());
    }

    @Test
    void importedAnatomyValuesAreIsolated() {
        PretrainedModel pm = Gpt2OnnxImporter.importModel(TorchStyleGpt2.build(WEIGHTS, WITH_PAST_21), "p",
                Gpt2Tokenizers.r50k()).model();
        Graph g = pm.model().graph();
        for (LayerAnatomy l : pm.anatomy().layers()) {
            // The cache output is the concat; the key PET methods see is an Identity after it.
            Value key = g.requireValue(l.key());
            assertEquals("Identity", key.producer().opType());
            assertEquals("Concat", key.producer().input(0).producer().opType());
            assertTrue(key.producer().input(0).isGraphOutput());
        }
    }
}
