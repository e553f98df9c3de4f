package dev.pet.runtime.train;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetConfigException;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.Quantization;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.EvalRequest;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.PetEngine;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.generate.Completion;
import dev.pet.runtime.generate.TextGenerator;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.serve.ServedModel;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.TrainingSummary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.nio.file.LinkOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** The engine behind {@code pet finetune | eval | generate | export | inspect}. */
public final class DefaultPetEngine implements PetEngine {
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.train");

    @Override
    public TrainingSummary finetune(RunConfig config, RunEnvironment env) {
        if (config.train().isEmpty()) {
            throw new PetException("train_dataset is missing: finetune needs data to train on");
        }
        if (config.runner().dataParallel() > 1) {
            throw new PetException("runner_config.data_parallel is " + config.runner().dataParallel() + ": a "
                    + "data-parallel run needs one replica per Spark task; run it with `pet finetune RUN.yaml --spark "
                    + "MASTER` or spark-submit (see the README), or set data_parallel: 1");
        }
        // Claim output_dir first: a second run into it, or a fresh run over another run's files, stops here.
        try (RunDirectory run = RunDirectory.open(config)) {
            return finetune(run, config, env);
        }
    }

    private TrainingSummary finetune(RunDirectory run, RunConfig config, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env);
        PackedDataset train = s.open(config.train().get(), env);
        PackedDataset eval = config.eval().map(d -> s.open(d, env)).orElse(null);
        try (OrtEngine engine = s.engine(); GraphTrainStep step = s.trainStep(engine)) {
            if (step.unchunkedBecause() != null) {
                // the run's logits were large enough for row chunks, but the model's head is not chunkable
                env.out().println("note: the LM head and loss run unchunked (more memory): " + step.unchunkedBecause());
            }
            TrainingLoop loop = new TrainingLoop(run, config, train, eval, step, env.listener(), s.base.name(),
                    s.petType());
            Thread hook = loop.installShutdownHook();
            try {
                return loop.run();
            } finally {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // The JVM is exiting because of a signal; the hook is already running.
                }
            }
        }
    }

    /** The adapter a command should use: the given one, else the run's final adapter if it exists. */
    private static Path adapterFor(RunConfig config, Path given) {
        if (given != null) {
            return given;
        }
        Path done = config.outputDir().resolve(TrainingLoop.ADAPTER_DIR);
        return Files.isDirectory(done) ? done : null;
    }

    /** As {@link #adapterFor}, but a base model (no pet_config) uses only an adapter given explicitly. */
    private static Path adapterFor(RunSetup s, Path given) {
        return s.pet == null ? given : adapterFor(s.config, given);
    }

    /** File, in the output directory, that {@code pet eval} writes. */
    public static final String EVAL_RESULTS = "eval_results.json";

    @Override
    public EvalMetrics evaluate(EvalRequest request, RunEnvironment env) {
        RunConfig config = request.config();
        RunSetup s = new RunSetup(config, env);
        if (config.eval().isEmpty()) {
            throw new PetException("eval_dataset is missing: eval needs data to measure");
        }
        PackedDataset data = s.open(config.eval().get(), env);
        Path adapter = adapterFor(s, request.adapter());
        // Eval-only: the forward graph and the loss, every weight a constant; no gradients, no optimizer state.
        Model forward = s.inferenceModel(adapter);
        EvalMetrics m;
        try (OrtEngine engine = s.engine(); GraphEval eval = new GraphEval(engine, forward, io(s), List.of())) {
            m = GraphEval.meanLoss(data, config.runner().batchSize(), 0, b -> eval.evaluate(b, Map.of()));
        }
        env.listener().onEvaluation(m);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("loss", m.loss());
        json.put("perplexity", m.perplexity());
        json.put("tokens", m.tokens());
        json.put("model", s.base.name());
        json.put("pet_type", s.petType());
        json.put("adapter", adapter == null ? null : adapter.toString());
        try {
            writeAtomically(config.outputDir().resolve(EVAL_RESULTS), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsBytes(json));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new PetException("cannot encode " + EVAL_RESULTS + ": " + e.getMessage(), e);
        }
        return m;
    }

    /**
     * The eval graph of {@code evaluate} (the config's model with {@code adapter}, else the run's final adapter when
     * it exists), compiled once and kept open to score texts one by one: one executor's for batch scoring.
     */
    public static TextScorer openScorer(RunConfig config, Path adapter, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env);
        Model forward = s.inferenceModel(adapterFor(s, adapter));
        OrtEngine engine = s.engine();
        try {
            return new TextScorer(s.base.tokenizer(), s.seqLength, engine, new GraphEval(engine, forward, io(s),
                    List.of()));
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
    }

    /** The tokenizer of the config's model, as training data is tokenized with it: one executor's, for Spark. */
    public static TextTokenizer openTokenizer(RunConfig config, RunEnvironment env) {
        return new RunSetup(config, env).base.tokenizer();
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
            new com.fasterxml.jackson.databind.ObjectMapper();

    private static GraphTrainStep.ModelIo io(RunSetup s) {
        var a = s.base.anatomy();
        return new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits());
    }

    @Override
    public List<Completion> generate(GenerateRequest request, RunEnvironment env, TextSink sink) {
        try (OpenGenerator g = openGenerator(request.config(), request.adapter(), env)) {
            return g.generator().complete(request.prompts(), request.generation(), request.stop(), null,
                    TextGenerator.Overflow.TRUNCATE_LEFT, sink::warning, sink);
        }
    }

    /** A compiled text generator and the engine that holds its session until {@link #close()}. */
    public record OpenGenerator(TextGenerator generator, OrtEngine engine) implements AutoCloseable {
        @Override
        public void close() {
            engine.close();
        }
    }

    /**
     * The model {@code generate} runs (the config's model with {@code adapter}, else the run's final adapter when it
     * exists), compiled once and kept open: one request's generator, or one executor's for batch generation.
     */
    public static OpenGenerator openGenerator(RunConfig config, Path adapter, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env, ModelRequest.GraphForm.GENERATION);
        // An imported graph's cache inputs get back the contract they were exported with (no empty defaults).
        Model model = DecoderImporter.requireGraphInputs(s.inferenceModel(adapterFor(s, adapter)));
        OrtEngine engine = s.engine();
        try {
            return new OpenGenerator(new TextGenerator(s.base.tokenizer(),
                    new Generator(engine.compile(model), s.tokenPositions())), engine);
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
    }

    @Override
    public void export(ExportRequest request, RunEnvironment env) {
        Path output = request.output();
        if (Files.exists(output, LinkOption.NOFOLLOW_LINKS) && !request.force()) {
            throw new IllegalArgumentException(output + " already exists; pass --force to replace it");
        }
        Path source = adapterFor(request.config(), request.source());
        if (source == null) {
            throw new PetException("no adapter to export: give --from DIR (an adapter or checkpoint directory) or "
                    + "finish a run so that " + request.config().outputDir().resolve(TrainingLoop.ADAPTER_DIR)
                    + " exists");
        }
        // Models are exported in the generation form (with past), which serves generation with a key/value cache and,
        // fed an empty past, computes what the training form does.
        RunSetup s = new RunSetup(request.config(), env, ModelRequest.GraphForm.GENERATION);
        PetModel pet = s.withAdapter(source);
        replaceAtomically(output, staged -> {
            switch (request.format()) {
                case MERGED_ONNX -> {
                    // An imported graph's cache inputs get back the contract they were exported with.
                    // On a quantized base, the adapter merges into the dequantized weights (what training saw).
                    Model merged = DecoderImporter.requireGraphInputs(s.adapter.mergedModel(
                            Quantization.dequantize(pet), pet.trainableTensors()));
                    if (request.quantize()) {
                        merged = requantized(s, merged);
                    }
                    if (output.getFileName().toString().endsWith(".onnx")) {
                        Files.write(staged, OnnxSerializer.toBytes(merged));
                    } else {
                        // A directory: the model and the files DJL loads it with.
                        Files.createDirectories(staged);
                        Files.write(staged.resolve(MERGED_MODEL), OnnxSerializer.toBytes(merged));
                        writeDjlSidecars(s, merged, staged);
                    }
                }
                case PEFT -> s.adapter.saveAdapter(pet, pet.trainableTensors(), staged);
                case ORT_ADAPTER -> exportOrtAdapter(s, pet, staged);
                default -> throw new IllegalStateException(request.format().toString());
            }
        });
    }

    /** A merged model quantized again with the run's own quantization settings ({@code export --quantize}). */
    private static Model requantized(RunSetup s, Model merged) {
        Quantization q = s.config.model().modelConfig().quantization();
        if (q == null) {
            throw new PetException("--quantize quantizes the merged model with the run's " + RunSetup.QUANTIZATION_PATH
                    + ", which the run config does not set");
        }
        try {
            return q.requantize(s.base, merged);
        } catch (PetConfigException e) {
            throw RunSetup.quantizationError(e);
        }
    }

    /**
     * Writes {@code target} (a file or a directory) through a hidden sibling and renames it into place, replacing
     * what was there only once the new content is complete ({@link AtomicFiles#replace}).
     */
    static void replaceAtomically(Path target, AtomicFiles.StagedWriter writer) {
        try {
            AtomicFiles.replace(target, writer);
        } catch (IOException e) {
            throw new PetException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }

    /** The model file of a {@code merged-onnx} export to a directory. */
    public static final String MERGED_MODEL = "model.onnx";

    /**
     * Beside a merged model exported to a directory: {@code pet_model.json} (model family, base model, positions,
     * end-of-text token) and DJL's {@code serving.properties} naming pet-djl's translator factory, so that DJL's
     * {@code Criteria.optModelPath(dir)} with {@code String -> String} generates text.
     */
    private static void writeDjlSidecars(RunSetup s, Model model, Path dir) {
        Map<String, Object> info = new LinkedHashMap<>();
        // The cache's static dims, [batch, kv_heads, past, head_dim], for the first step's empty past.
        var past = model.graph().value(CausalLmNames.pastKey(0));
        if (past == null || past.type().dims() == null || past.type().dims().size() != 4
                || !past.type().dims().get(1).isFixed() || !past.type().dims().get(3).isFixed()) {
            throw new PetException("the merged model has no " + CausalLmNames.pastKey(0)
                    + " input with static kv_heads and head_dim; DJL generation needs the with-past form");
        }
        info.put("provider", s.base.providerId());
        Path asPath = Path.of(s.base.name());
        info.put("model", Files.isDirectory(asPath) ? asPath.toAbsolutePath().toString() : s.base.name());
        info.put("max_positions", s.tokenPositions());
        info.put("eos_token_id", s.base.tokenizer().eosTokenId());
        info.put("kv_heads", past.type().dims().get(1).value());
        info.put("head_dim", past.type().dims().get(3).value());
        try {
            writeAtomically(dir.resolve("pet_model.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(info));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new PetException("cannot encode pet_model.json: " + e.getMessage(), e);
        }
        writeAtomically(dir.resolve("serving.properties"), ("engine=OnnxRuntime\n"
                + "translatorFactory=dev.pet.djl.PetTranslatorFactory\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** File names inside an {@code ort-adapter} export directory. */
    public static final String ORT_MODEL = "model.onnx";
    public static final String ORT_ADAPTER = "adapter.onnx_adapter";

    /**
     * Multi-adapter serving with ONNX Runtime's {@code OrtLoraAdapter}: {@code model.onnx} is the PET graph in inference
     * mode (generation form) whose trainable tensors are graph inputs defaulting to their initial values (for LoRA, B = 0: the base
     * model), and {@code adapter.onnx_adapter} holds the trained values; activating it in a run's options applies it.
     * Any number of adapters exported from the same config share the one model.
     */
    private static void exportOrtAdapter(RunSetup s, PetModel trained, Path dir) {
        // The trained model's structure (its adapter's config may differ from the run's), with initial values.
        PetModel initial = sameStructure(s.adapter, s.base, trained);
        Model serving = DecoderImporter.requireGraphInputs(trained.inferenceModel());
        for (String t : trained.trainables()) {
            serving.graph().setInitializer(t, initial.model().graph().initializer(t));
            serving.graph().addInput(t, serving.graph().requireValue(t).type());
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new PetException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        dev.pet.onnx.io.OnnxFiles.write(serving, dir.resolve(ORT_MODEL));
        dev.pet.onnx.io.OrtAdapterFile.write(dir.resolve(ORT_ADAPTER), trained.trainableTensors(), 1, 1);
    }

    private static <C extends dev.pet.api.PetConfig> PetModel sameStructure(dev.pet.api.PetAdapter<C> adapter,
            dev.pet.api.PretrainedModel base, PetModel trained) {
        return adapter.getPetModel(base, adapter.configOf(trained));
    }

    @Override
    public ServedModel openServed(RunConfig config, Path adapters, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env, ModelRequest.GraphForm.GENERATION);
        if (s.pet == null && adapters != null) {
            throw new PetException("--adapters needs a PET method: give a run config whose "
                    + "model.model_config.pet_config says which (pet_type: lora, ...)");
        }
        Model model = s.pet == null ? s.base.model() : s.servingModel();
        OrtEngine engine = s.engine();
        Map<String, dev.pet.engine.OrtAdapter> loaded = Map.of();
        try {
            Generator generator = new Generator(engine.compile(model), s.tokenPositions());
            loaded = adapters == null ? Map.of() : ServedModel.loadAdapters(adapters);
            String name = s.base.name();
            java.nio.file.Path asPath = Path.of(name).getFileName();
            String baseName = Files.isDirectory(Path.of(name)) && asPath != null ? asPath.toString() : name;
            return new ServedModel(baseName, new TextGenerator(s.base.tokenizer(), generator), loaded, engine);
        } catch (RuntimeException e) {
            loaded.values().forEach(dev.pet.engine.OrtAdapter::close);
            engine.close();
            throw e;
        }
    }

    private static void writeAtomically(Path target, byte[] bytes) {
        try {
            Files.createDirectories(target.toAbsolutePath().getParent());
            AtomicFiles.write(target, bytes);
        } catch (IOException e) {
            throw new PetException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }

    @Override
    public ModelInspection inspect(RunConfig config, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env);
        long params = 0;
        Model model = s.pet == null ? s.base.model() : s.pet.model();
        for (Tensor t : model.graph().initializers().values()) {
            if (t.dataType().isFloatingPoint()) {
                params += t.elementCount();
            }
        }
        Map<String, Long> ops = new TreeMap<>();
        for (Node n : model.graph().nodes()) {
            ops.merge(n.opType(), 1L, Long::sum);
        }
        List<String> anatomy = new ArrayList<>(s.base.anatomy().describe());
        Object imported = s.base.config().get(PretrainedModel.IMPORT_REPORT);
        if (imported != null) {
            anatomy.addAll(List.of(imported.toString().split("\n")));
        }
        List<String> quantization = List.of();
        if (s.quantized != null) {
            params += s.quantized.parameters();
            quantization = quantizationReport(s.quantized, QuantizedLinears.usesContribOps(model));
        }
        return new ModelInspection(s.base.name(), s.petType(), params,
                s.pet == null ? 0 : s.pet.trainableParameterCount(), ops,
                anatomy, quantization);
    }

    /** Settings, bytes per quantized parameter, contrib-op use, then one line per weight with its error. */
    static List<String> quantizationReport(QuantizedLinears.Result r, boolean contribOps) {
        List<String> lines = new ArrayList<>();
        lines.add(r.spec().describe());
        // A table looked up through a tied head's codes holds no bytes of its own.
        long stored = r.layers().stream().filter(l -> l.bytes() > 0).mapToLong(QuantizedLinears.Layer::parameters)
                .sum();
        lines.add(String.format(Locale.ROOT, "%d weights, %,d parameters in %,d bytes: %.3f bytes/parameter "
                + "(forward and backward copies; float32 is 4)", r.layers().size(), stored, r.bytes(),
                (double) r.bytes() / stored));
        boolean lookup = r.layers().stream().anyMatch(QuantizedLinears.Layer::lookup);
        boolean integer = r.spec().kernel() == dev.pet.onnx.quant.QuantSpec.Kernel.MATMUL_INTEGER;
        lines.add(contribOps ? "training, evaluation and generation graphs use ONNX Runtime contrib ops (com.microsoft"
                + (integer ? " MatMulIntegerToFloat, inside the model's function dev.pet.DynamicInt8MatMul"
                        : " MatMulNBits") + (lookup ? ", GatherBlockQuantized" : "") + "): they run on ONNX Runtime"
                + " only; merged exports use standard ONNX ops"
                : "training, evaluation, generation graphs and merged exports use standard ONNX ops only"
                + (r.spec().kernel() == dev.pet.onnx.quant.QuantSpec.Kernel.DEQUANTIZE
                        ? " (DequantizeLinear with block_size, opset 21)" : ""));
        for (QuantizedLinears.Layer l : r.layers()) {
            lines.add(String.format(Locale.ROOT, "%-48s [%d x %d] relative error %.4f%s%s", l.weight(),
                    l.outFeatures(), l.inFeatures(), l.relativeError(), l.padded() ? " (last block padded)" : "",
                    !l.lookup() ? "" : l.bytes() == 0 ? " (token lookup through the output head's codes)"
                            : " (token lookup)"));
        }
        return lines;
    }
}
