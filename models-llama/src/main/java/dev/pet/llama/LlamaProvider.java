package dev.pet.llama;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.api.onnximport.OnnxExport;
import dev.pet.hf.HfTokenizer;
import dev.pet.onnx.ir.Model;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The {@code llama} model provider: Llama, Mistral and Qwen2 (and models of their shape: SmolLM, TinyLlama). A
 * request names a preset ({@link LlamaPresets}: seeded random weights) or a Hugging Face model directory
 * ({@code config.json} + {@code model.safetensors} or its shards, {@code tokenizer.json}) or an ONNX export
 * ({@code .onnx} file or Optimum directory, imported by {@link LlamaOnnxImporter}). The model's graph is
 * the training form: {@code input_ids} and {@code attention_mask} in, {@code logits} out, no cache; use
 * {@link #loadWeights} and {@link LlamaGraph#build} for other forms.
 */
public final class LlamaProvider implements ModelProvider {
    /** MindFormers {@code LlamaConfig} spellings and the Hugging Face keys they set. */
    private static final Map<String, String> MINDFORMERS_KEYS = Map.of("num_layers", "num_hidden_layers",
            "num_heads", "num_attention_heads", "n_kv_heads", "num_key_value_heads", "seq_length",
            "max_position_embeddings", "theta", "rope_theta", "layer_norm_epsilon", "rms_norm_eps");

    @Override
    public String id() {
        return "llama";
    }

    @Override
    public Set<String> aliases() {
        Set<String> a = new TreeSet<>(LlamaPresets.names());
        a.addAll(Set.of("mistral", "qwen2", "llamaconfig", "mistralconfig", "qwen2config", "llamaforcausallm",
                "mistralforcausallm", "qwen2forcausallm"));
        return a;
    }

    @Override
    public boolean recognisesOnnx(Model graph) {
        return LlamaOnnxImporter.recognises(graph);
    }

    @Override
    public PretrainedModel load(ModelRequest request) {
        if (!LlamaPresets.isPreset(request.nameOrPath()) && OnnxExport.isExport(request.nameOrPath())) {
            if (!request.overrides().isEmpty()) {
                throw new PetException(request.nameOrPath() + ": an ONNX export fixes its config; remove the "
                        + "overrides " + request.overrides().keySet());
            }
            return LlamaOnnxImporter.importExport(OnnxExport.open(request.nameOrPath(), request.form())).model();
        }
        LlamaWeights weights = loadWeights(request);
        String name = request.nameOrPath();
        TextTokenizer tokenizer = LlamaPresets.isPreset(name) ? LlamaPresets.tokenizer()
                : directoryTokenizer(Path.of(name));
        LlamaGraph graph = LlamaGraph.build(weights, request.form() == dev.pet.api.ModelRequest.GraphForm.GENERATION
                ? CausalLmGraphOptions.inference() : CausalLmGraphOptions.training());
        LlamaConfig c = weights.config();
        Map<String, Object> config = new LinkedHashMap<>(c.toMap());
        config.values().removeIf(java.util.Objects::isNull);
        return new PretrainedModel(id(), name, graph.model(), graph.anatomy(), tokenizer, config, c.vocabSize(),
                c.maxSequenceLength());
    }

    /** The weights a request names: a preset's seeded random weights or a directory's checkpoint. */
    public static LlamaWeights loadWeights(ModelRequest request) {
        String name = request.nameOrPath();
        Map<String, Object> overrides = new LinkedHashMap<>();
        request.overrides().forEach((k, v) -> {
            String key = MINDFORMERS_KEYS.getOrDefault(k, k);
            if (!LlamaConfig.overridableKeys().contains(key)) {
                throw new PetException("Llama: unknown config override '" + k + "'; expected one of "
                        + new TreeSet<>(LlamaConfig.overridableKeys()) + " or " + MINDFORMERS_KEYS.keySet());
            }
            overrides.put(key, v);
        });
        if (LlamaPresets.isPreset(name)) {
            LlamaConfig c = LlamaPresets.config(name);
            if (!overrides.isEmpty()) {
                Map<String, Object> m = new LinkedHashMap<>(c.toMap());
                m.putAll(overrides);
                c = LlamaConfig.fromMap(m, "preset " + name + " with overrides");
            }
            return LlamaWeights.random(c, request.seed());
        }
        Path p = Path.of(name);
        if (Files.isDirectory(p)) {
            return LlamaCheckpoint.load(p, overrides);
        }
        throw new PetException("Llama: '" + name + "' is neither a preset " + LlamaPresets.names()
                + " nor a model directory");
    }

    /** The directory's tokenizer.json; a directory without one fails when text is first tokenized. */
    static TextTokenizer directoryTokenizer(Path dir) {
        if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            return HfTokenizer.forDirectory(dir);
        }
        return new TextTokenizer() {
            private PetException missing() {
                return new PetException(dir + ": no tokenizer.json, so text cannot be tokenized (save the model's "
                        + "tokenizer with save_pretrained next to config.json)");
            }

            @Override
            public long[] encode(String text) {
                throw missing();
            }

            @Override
            public String decode(long[] ids) {
                throw missing();
            }

            @Override
            public int vocabularySize() {
                throw missing();
            }

            @Override
            public long eosTokenId() {
                return -1;
            }
        };
    }
}
