package dev.pet.llama;

import dev.pet.api.LinearModule;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.api.onnximport.DecoderImporter.ImportedDecoder;
import dev.pet.api.onnximport.DecoderLayout;
import dev.pet.api.onnximport.ImportReport;
import dev.pet.api.onnximport.OnnxExport;
import dev.pet.onnx.ir.Model;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Imports a Llama-family forward graph (Llama, Mistral, Qwen2) exported by {@code torch.onnx.export} or Hugging Face
 * Optimum: the family-neutral {@link DecoderImporter} with Llama's module names ({@code model.layers.N.self_attn.q_proj},
 * nn.Linear weights), plus its config keys. Keys and values are recovered before {@code repeat_kv}
 * ([batch, kvHeads, keys, headDim], as {@link LlamaGraph} names them) and the position ids where the rotary angles
 * cast them to float.
 */
public final class LlamaOnnxImporter {
    /** Llama's module names as the importer looks for them. */
    public static final DecoderLayout LAYOUT = new DecoderLayout("llama", List.of("model.layers.", "layers."),
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                    "mlp.up_proj", "mlp.down_proj"), "self_attn.o_proj", "mlp.down_proj",
            List.of("input_layernorm", "post_attention_layernorm"), "lm_head",
            List.of("model.embed_tokens.weight", "embed_tokens.weight"), List.of());

    private LlamaOnnxImporter() {
    }

    /**
     * The imported model and what was recognised.
     *
     * @param model  the model, its anatomy and tokenizer
     * @param report recognised and unrecognised parts
     */
    public record Result(PretrainedModel model, ImportReport report) {
        public Result {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(report, "report");
        }
    }

    /** Whether a graph's module names are Llama's. */
    public static boolean recognises(Model model) {
        return LAYOUT.namesAnyModule(model.graph());
    }

    /** Imports an export; its directory gives the tokenizer ({@code tokenizer.json}) and {@code config.json}. */
    public static Result importExport(OnnxExport export) {
        return importModel(export.model(), export.file().toString(),
                LlamaProvider.directoryTokenizer(export.directory()), export.config(), export.merged());
    }

    /** Imports a copy of {@code model}; {@code config} is its {@code config.json} (may be empty). */
    public static Result importModel(Model model, String source, TextTokenizer tokenizer,
            Map<String, Object> config) {
        return importModel(model, source, tokenizer, config, null);
    }

    private static Result importModel(Model model, String source, TextTokenizer tokenizer,
            Map<String, Object> config, String merged) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Object h = config.get("num_attention_heads");
        Long heads = h instanceof Number n ? n.longValue() : null;
        ImportedDecoder d = DecoderImporter.importModel(model, source, LAYOUT, heads, merged);
        Map<String, Object> c = new LinkedHashMap<>();
        long positions = -1;
        if (config.containsKey("model_type")) {
            LlamaConfig lc = LlamaConfig.fromMap(config, source + " config.json");
            if (lc.numHiddenLayers() != d.anatomy().layers().size() || lc.hiddenSize() != d.anatomy().hiddenSize()) {
                throw new PetException(source + ": config.json says " + lc.numHiddenLayers() + " layers of width "
                        + lc.hiddenSize() + ", the graph has " + d.anatomy().layers().size() + " of width "
                        + d.anatomy().hiddenSize());
            }
            c.putAll(lc.toMap());
            c.values().removeIf(Objects::isNull);
            positions = lc.maxSequenceLength();
        }
        long vocab = d.embedding() != null ? d.embedding().dim(0) : -1;
        c.put("vocab_size", vocab);
        c.put("hidden_size", d.anatomy().hiddenSize());
        c.put("num_hidden_layers", d.anatomy().layers().size());
        c.put("num_attention_heads", d.anatomy().numHeads());
        c.put("num_key_value_heads", d.anatomy().numKeyValueHeads());
        LinearModule gate = d.linear(0, "mlp.gate_proj");
        if (gate != null) {
            c.put("intermediate_size", gate.outFeatures());
        }
        c.put("source_format", "onnx");
        ImportReport report = positions > 0 ? d.report() : d.report().with("max_position_embeddings", false,
                "no config.json with max_position_embeddings; give model_config.seq_length");
        c.put(PretrainedModel.IMPORT_REPORT, report.describe());
        PretrainedModel pm = new PretrainedModel("llama", source, d.model(), d.anatomy(), tokenizer, c, vocab,
                positions > 0 ? positions : Integer.MAX_VALUE);
        return new Result(pm, report);
    }
}
