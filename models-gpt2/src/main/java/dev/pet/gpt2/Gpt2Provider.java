package dev.pet.gpt2;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.api.onnximport.OnnxExport;
import dev.pet.gpt2.onnx.Gpt2OnnxImporter;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.ir.Model;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The {@code gpt2} model provider. A request names a preset ({@code gpt2-tiny}, {@code gpt2}, ...: seeded random
 * weights with Hugging Face's initialisation) or a Hugging Face model directory ({@code config.json} +
 * {@code model.safetensors} or a sharded {@code model.safetensors.index.json}, optional tokenizer files) or an ONNX
 * export ({@code .onnx} file or Optimum directory, imported by {@link Gpt2OnnxImporter}). A built graph is the form
 * the request asks for: {@link CausalLmGraphOptions#training()}, or for generation {@link CausalLmGraphOptions#inference()}
 * (the Optimum with-past convention); use {@link #loadWeights} and
 * {@link Gpt2Graph#build} for other forms.
 */
public final class Gpt2Provider implements ModelProvider {
    @Override
    public String id() {
        return "gpt2";
    }

    @Override
    public Set<String> aliases() {
        // Presets, and the config/architecture type names of Hugging Face and MindFormers run configs.
        return Set.of("gpt2-tiny", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2", "gpt2config",
                "gpt2lmheadmodel");
    }

    @Override
    public boolean recognisesOnnx(Model graph) {
        return Gpt2OnnxImporter.recognises(graph);
    }

    @Override
    public PretrainedModel load(ModelRequest request) {
        if (!isPreset(request.nameOrPath()) && OnnxExport.isExport(request.nameOrPath())) {
            if (!request.overrides().isEmpty()) {
                throw new PetException(request.nameOrPath() + ": an ONNX export fixes its config; remove the "
                        + "overrides " + request.overrides().keySet());
            }
            return Gpt2OnnxImporter.importExport(OnnxExport.open(request.nameOrPath(), request.form())).model();
        }
        Gpt2Weights weights = loadWeights(request);
        TextTokenizer tokenizer = isPreset(request.nameOrPath()) ? Gpt2Tokenizers.r50k()
                : Gpt2Tokenizers.forDirectory(Path.of(request.nameOrPath()));
        Gpt2Graph graph = Gpt2Graph.build(weights, request.form() == ModelRequest.GraphForm.GENERATION
                ? CausalLmGraphOptions.inference() : CausalLmGraphOptions.training());
        Gpt2Config c = weights.config();
        return new PretrainedModel(id(), request.nameOrPath(), graph.model(), graph.anatomy(), tokenizer,
                c.toMap(), c.vocabSize(), c.nPositions());
    }

    /** The weights a request names: a preset's seeded random weights or a directory's checkpoint. */
    public static Gpt2Weights loadWeights(ModelRequest request) {
        String name = request.nameOrPath();
        for (String key : request.overrides().keySet()) {
            if (!Gpt2Config.knownKeys().contains(key)) {
                throw new PetException("GPT-2: unknown config override '" + key + "'; expected one of "
                        + Gpt2Config.knownKeys());
            }
        }
        if (isPreset(name)) {
            Gpt2Config c = Gpt2Config.preset(name);
            if (!request.overrides().isEmpty()) {
                Map<String, Object> m = new LinkedHashMap<>(c.toMap());
                request.overrides().forEach((k, v) -> {
                    // An override under an alias replaces the canonical key rather than conflicting with it.
                    m.keySet().removeIf(existing -> Gpt2Config.sameKey(existing, k));
                    m.put(k, v);
                });
                c = Gpt2Config.fromMap(m, "preset " + name + " with overrides");
            }
            return Gpt2Weights.random(c, request.seed());
        }
        Path p = Path.of(name);
        if (Files.isDirectory(p)) {
            return Gpt2Checkpoint.load(p, request.overrides());
        }
        throw new PetException("GPT-2: '" + name + "' is neither a preset " + Gpt2Config.presetNames()
                + " nor a model directory");
    }

    private static boolean isPreset(String name) {
        return Gpt2Config.presetNames().contains(name.toLowerCase(Locale.ROOT));
    }
}
