package dev.pet.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.hf.HfTokenizer;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad configs, checkpoints and tokenizers: one clear line naming the file, key or tensor and what was expected. */
class LlamaBadInputTest {
    @TempDir
    Path dir;

    private PetException loadFails(Map<String, Object> config) throws Exception {
        Files.writeString(dir.resolve("config.json"), dev.pet.hf.HfJson.write(config));
        return assertThrows(PetException.class, () -> new LlamaProvider().load(ModelRequest.of(dir.toString())));
    }

    private static Map<String, Object> config(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>(TestLlamas.config().toMap());
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static void oneLine(PetException e, String... fragments) {
        String m = e.getMessage();
        assertEquals(1, m.lines().count(), m);
        for (String f : fragments) {
            assertTrue(m.contains(f), "'" + f + "' missing from: " + m);
        }
    }

    @Test
    void unknownModelTypeIsRefused() throws Exception {
        oneLine(loadFails(config("model_type", "gpt_neox")), "config.json", "model_type 'gpt_neox'",
                "[llama, mistral, qwen2]");
    }

    @Test
    void unsupportedRopeScalingIsRefused() throws Exception {
        oneLine(loadFails(config("rope_scaling", Map.of("rope_type", "yarn", "factor", 4.0))), "config.json",
                "'yarn'", "[default, linear, llama3]");
        oneLine(loadFails(config("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0))),
                "low_freq_factor");
    }

    @Test
    void headsThatAreNotAMultipleOfKeyValueHeadsAreRefused() throws Exception {
        oneLine(loadFails(config("num_key_value_heads", 3)), "config.json", "num_attention_heads (4)",
                "multiple of num_key_value_heads (3)");
    }

    @Test
    void otherActivationsAreRefused() throws Exception {
        oneLine(loadFails(config("hidden_act", "gelu")), "hidden_act 'gelu'", "silu");
    }

    @Test
    void missingAndExtraTensorsAreListed() throws Exception {
        LlamaConfig c = TestLlamas.config();
        Map<String, Tensor> sd = new LinkedHashMap<>(LlamaWeights.random(c, 1).tensors());
        sd.remove("model.layers.1.mlp.up_proj.weight");
        PetException e = assertThrows(PetException.class, () -> LlamaWeights.of(c, sd, "ckpt"));
        oneLine(e, "ckpt", "missing tensors [model.layers.1.mlp.up_proj.weight]");

        Map<String, Tensor> extra = new LinkedHashMap<>(LlamaWeights.random(c, 1).tensors());
        extra.put("model.layers.2.self_attn.q_proj.weight", Tensor.zeros(dev.pet.onnx.tensor.DataType.FLOAT, 64, 64));
        extra.put("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor.zeros(dev.pet.onnx.tensor.DataType.FLOAT, 8));
        e = assertThrows(PetException.class, () -> LlamaWeights.of(c, extra, "ckpt"));
        oneLine(e, "unexpected tensors [model.layers.2.self_attn.q_proj.weight]", "num_hidden_layers=2");

        Map<String, Tensor> wrong = new LinkedHashMap<>(LlamaWeights.random(c, 1).tensors());
        wrong.put("model.layers.0.self_attn.k_proj.weight", Tensor.zeros(dev.pet.onnx.tensor.DataType.FLOAT, 64, 64));
        e = assertThrows(PetException.class, () -> LlamaWeights.of(c, wrong, "ckpt"));
        oneLine(e, "'model.layers.0.self_attn.k_proj.weight'", "[64, 64]", "expected [32, 64]");
    }

    @Test
    void untiedCheckpointWithoutLmHeadIsRefused() throws Exception {
        LlamaConfig tied = TestLlamas.config("tie_word_embeddings", true);
        LlamaCheckpoint.save(LlamaWeights.random(tied, 1), dir);
        Map<String, Object> untied = new LinkedHashMap<>(tied.toMap());
        untied.put("tie_word_embeddings", false);
        oneLine(loadFails(untied), "missing tensors [lm_head.weight]");
    }

    @Test
    void unparseableTokenizerJsonIsRefused() throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
        oneLine(assertThrows(PetException.class, () -> HfTokenizer.forDirectory(dir)), "tokenizer.json",
                "not valid JSON");
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"Nonsense\", \"vocab\": {\"a\": 0}}}");
        oneLine(assertThrows(PetException.class, () -> HfTokenizer.forDirectory(dir)), "tokenizer.json",
                "could not load");
    }

    @Test
    void mistralRefusesSequencesBeyondItsSlidingWindow() throws Exception {
        Map<String, Object> m = config("model_type", "mistral", "sliding_window", 8);
        LlamaConfig c = LlamaConfig.fromMap(m, "mistral");
        assertEquals(8, c.maxSequenceLength());
        LlamaCheckpoint.save(LlamaWeights.random(c, 1), dir);
        var model = new LlamaProvider().load(ModelRequest.of(dir.toString()));
        assertEquals(8, model.maxPositions(), "runs and generation refuse anything longer than the window");
        m.put("sliding_window", null);
        assertEquals(64, LlamaConfig.fromMap(m, "mistral without window").maxSequenceLength());
        m.remove("sliding_window");
        assertEquals(64, LlamaConfig.fromMap(m, "mistral default window 4096").maxSequenceLength());
    }

    @Test
    void unknownPresetsAndOverridesAreRefused() {
        oneLine(assertThrows(PetException.class, () -> new LlamaProvider().load(ModelRequest.of("llama-huge"))),
                "llama-huge", "llama-tiny");
        oneLine(assertThrows(PetException.class, () -> new LlamaProvider().load(new ModelRequest("llama-tiny",
                Map.of("n_embd", 8), 0))), "unknown config override 'n_embd'");
    }
}
