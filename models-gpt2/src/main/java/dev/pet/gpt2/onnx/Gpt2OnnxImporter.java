package dev.pet.gpt2.onnx;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.LinearModule;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.api.onnximport.DecoderImporter.ImportedDecoder;
import dev.pet.api.onnximport.DecoderLayout;
import dev.pet.api.onnximport.ImportReport;
import dev.pet.api.onnximport.OnnxExport;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Tokenizers;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Imports a GPT-2 forward graph exported by {@code torch.onnx.export}, Hugging Face Optimum or PET Runtime: the
 * family-neutral {@link DecoderImporter} with GPT-2's module names ({@code transformer.h.N.attn.c_attn}, Conv1D
 * weights [in, out] or nn.Linear [out, in]), plus what only GPT-2 has: learned positions ({@code transformer.wpe})
 * and its config keys ({@code n_embd}, {@code n_head}, ...).
 */
public final class Gpt2OnnxImporter {
    /** GPT-2's module names as the importer looks for them. */
    public static final DecoderLayout LAYOUT = new DecoderLayout("gpt2", List.of("transformer.h.", "h."),
            List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"), "attn.c_proj", "mlp.c_proj",
            List.of("ln_1", "ln_2"), "lm_head", List.of("transformer.wte.weight", "wte.weight"),
            List.of("transformer.wpe", "wpe"));
    private static final ObjectMapper JSON = new ObjectMapper();

    private Gpt2OnnxImporter() {
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

    /** Imports a {@code .onnx} file or an Optimum export directory. */
    public static PretrainedModel load(Path fileOrDirectory) {
        return importExport(OnnxExport.open(fileOrDirectory.toString())).model();
    }

    /** Imports an in-memory model (not modified) with the {@code r50k_base} tokenizer. */
    public static PretrainedModel load(Model model) {
        return importModel(model, "<in-memory model>", Gpt2Tokenizers.r50k()).model();
    }

    /** Imports an export; its directory gives the tokenizer (else {@code r50k_base}) and {@code config.json}. */
    public static Result importExport(OnnxExport export) {
        TextTokenizer tokenizer = Gpt2Tokenizers.forDirectory(export.directory());
        return importModel(export.model(), export.file().toString(), tokenizer, export.config(), export.merged());
    }

    /** Imports a copy of {@code model}; {@code source} names it in messages. */
    public static Result importModel(Model model, String source, TextTokenizer tokenizer) {
        return importModel(model, source, tokenizer, metadataConfig(model), null);
    }

    private static Result importModel(Model model, String source, TextTokenizer tokenizer,
            Map<String, Object> config, String merged) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Long heads = intKey(config, "n_head", source);
        ImportedDecoder d = DecoderImporter.importModel(model, source, LAYOUT, heads, merged);
        Graph g = d.model().graph();
        ImportReport report = d.report();
        long positions = -1;
        Long configured = intKey(config, "n_positions", source);
        Tensor wpe = wpe(g);
        if (wpe != null) {
            positions = wpe.dim(0);
            report = report.with("transformer.wpe", true, "initializer with " + positions + " positions");
        } else if (configured != null) {
            positions = configured;
            report = report.with("transformer.wpe", false, "no initializer 'transformer.wpe.weight' and no Gather "
                    + "under '/transformer/wpe/'; n_positions " + positions + " from config.json");
        } else {
            report = report.with("transformer.wpe", false, "no initializer 'transformer.wpe.weight' and no Gather "
                    + "under '/transformer/wpe/' (n_positions unknown, reported as -1)");
        }
        long vocab = d.embedding() != null ? d.embedding().dim(0) : -1;
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("n_layer", d.anatomy().layers().size());
        c.put("n_embd", d.anatomy().hiddenSize());
        c.put("n_head", d.anatomy().numHeads());
        c.put("vocab_size", vocab);
        c.put("n_positions", positions);
        LinearModule fc = d.linear(0, "mlp.c_fc");
        if (fc != null) {
            c.put("n_inner", fc.outFeatures());
        }
        c.put("source_format", "onnx");
        c.put(PretrainedModel.IMPORT_REPORT, report.describe());
        PretrainedModel pm = new PretrainedModel("gpt2", source, d.model(),
                d.anatomy().withDefaultTargetModules(Gpt2Graph.DEFAULT_TARGET_MODULES), tokenizer, c, vocab, positions);
        return new Result(pm, report);
    }

    /** Whether a graph's module names are GPT-2's. */
    public static boolean recognises(Model model) {
        return LAYOUT.namesAnyModule(model.graph());
    }

    private static Tensor wpe(Graph g) {
        for (String n : List.of("transformer.wpe.weight", "wpe.weight")) {
            if (g.initializer(n) != null && g.initializer(n).rank() == 2) {
                return g.initializer(n);
            }
        }
        for (Node n : g.nodes()) {
            if (n.opType().equals("Gather") && (n.name().startsWith("/transformer/wpe/")
                    || n.name().startsWith("/wpe/")) && g.initializer(n.input(0).name()) != null) {
                return g.initializer(n.input(0).name());
            }
        }
        return null;
    }

    private static Long intKey(Map<String, Object> config, String key, String source) {
        Object v = config.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Number n && n.doubleValue() == n.longValue() && n.longValue() > 0) {
            return n.longValue();
        }
        throw new PetException(source + ": config '" + key + "' must be a positive integer, found " + v);
    }

    /** The config PET Runtime's own exports carry in their metadata, or an empty map. */
    private static Map<String, Object> metadataConfig(Model model) {
        String json = model.metadata().get(Gpt2Graph.CONFIG_METADATA);
        if (json == null) {
            return Map.of();
        }
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = JSON.readValue(json, Map.class);
            return map;
        } catch (IOException e) {
            return Map.of();
        }
    }
}
