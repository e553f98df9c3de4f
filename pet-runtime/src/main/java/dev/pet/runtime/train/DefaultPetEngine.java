package dev.pet.runtime.train;

import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.onnximport.DecoderImporter;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.ModelInspection;
import dev.pet.runtime.checkpoint.RunDirectory;
import dev.pet.runtime.PetEngine;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.metrics.EvalMetrics;
import dev.pet.runtime.metrics.TrainingSummary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.nio.file.LinkOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/** The engine behind {@code pet finetune | eval | generate | export | inspect}. */
public final class DefaultPetEngine implements PetEngine {
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.train");

    @Override
    public TrainingSummary finetune(RunConfig config, RunEnvironment env) {
        if (config.train().isEmpty()) {
            throw new PetException("train_dataset is missing: finetune needs data to train on");
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
            TrainingLoop loop = new TrainingLoop(run, config, train, eval, step, env.listener(), s.base.name(),
                    s.adapter.type());
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

    @Override
    public EvalMetrics evaluate(RunConfig config, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env);
        if (config.eval().isEmpty()) {
            throw new PetException("eval_dataset is missing: eval needs data to measure");
        }
        PackedDataset eval = s.open(config.eval().get(), env);
        PetModel pet = s.withAdapter(adapterFor(config, null));
        try (OrtEngine engine = s.engine();
                GraphTrainStep step = new GraphTrainStep(engine, pet.model(), io(s), pet.trainables(),
                        s.optimizer(), config.seed(), (v, d) -> { })) {
            EvalMetrics m = TrainingLoop.evaluate(eval, config.runner().batchSize(), step, 0);
            env.listener().onEvaluation(m);
            return m;
        }
    }

    private static GraphTrainStep.ModelIo io(RunSetup s) {
        var a = s.base.anatomy();
        return new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits());
    }

    @Override
    public String generate(GenerateRequest request, RunEnvironment env) {
        RunSetup s = new RunSetup(request.config(), env);
        PetModel pet = s.withAdapter(adapterFor(request.config(), request.adapter()));
        long[] prompt = s.base.tokenizer().encode(request.prompt());
        if (prompt.length == 0) {
            throw new PetException("the prompt is empty after tokenization");
        }
        var a = s.base.anatomy();
        List<Long> ids = new ArrayList<>();
        for (long id : prompt) {
            ids.add(id);
        }
        Random rnd = new Random(request.seed());
        long eos = s.base.tokenizer().eosTokenId();
        try (OrtEngine engine = s.engine(); CompiledGraph g = engine.compile(pet.inferenceModel())) {
            for (int t = 0; t < request.maxNewTokens() && ids.size() < s.tokenPositions(); t++) {
                long[] x = ids.stream().mapToLong(Long::longValue).toArray();
                Map<String, Tensor> feeds = new HashMap<>();
                feeds.put(a.inputIds(), Tensor.ofLongs(x, 1, x.length));
                if (a.attentionMask() != null) {
                    long[] mask = new long[x.length];
                    Arrays.fill(mask, 1);
                    feeds.put(a.attentionMask(), Tensor.ofLongs(mask, 1, x.length));
                }
                float[] logits = g.run(feeds).get(a.logits()).toFloatArray();
                int vocab = (int) s.base.vocabSize();
                long next = sample(Arrays.copyOfRange(logits, logits.length - vocab, logits.length),
                        request.temperature(), request.topK(), rnd);
                if (next == eos) {
                    break;
                }
                ids.add(next);
            }
        }
        long[] generated = ids.subList(prompt.length, ids.size()).stream().mapToLong(Long::longValue).toArray();
        return request.prompt() + s.base.tokenizer().decode(generated);
    }

    /** Greedy when temperature is 0, else softmax(logits / T) sampling over the top-k (k = 0: all). */
    static long sample(float[] logits, double temperature, int topK, Random rnd) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        if (temperature == 0) {
            return best;
        }
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (p, q) -> Float.compare(logits[q], logits[p]));
        int k = topK == 0 ? logits.length : Math.min(topK, logits.length);
        double[] w = new double[k];
        double z = 0;
        for (int i = 0; i < k; i++) {
            w[i] = Math.exp((logits[order[i]] - logits[best]) / temperature);
            z += w[i];
        }
        double u = rnd.nextDouble() * z;
        for (int i = 0; i < k; i++) {
            u -= w[i];
            if (u <= 0) {
                return order[i];
            }
        }
        return order[k - 1];
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
        RunSetup s = new RunSetup(request.config(), env);
        PetModel pet = s.withAdapter(source);
        replaceAtomically(output, staged -> {
            switch (request.format()) {
                case MERGED_ONNX -> {
                    // An imported graph's cache inputs get back the contract they were exported with.
                    Model merged = DecoderImporter.requireCacheInputs(s.adapter.mergedModel(pet,
                            pet.trainableTensors()));
                    Files.write(staged, OnnxSerializer.toBytes(merged));
                }
                case PEFT -> s.adapter.saveAdapter(pet, pet.trainableTensors(), staged);
                case ORT_ADAPTER -> exportOrtAdapter(s, pet, staged);
                default -> throw new IllegalStateException(request.format().toString());
            }
        });
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

    /** File names inside an {@code ort-adapter} export directory. */
    public static final String ORT_MODEL = "model.onnx";
    public static final String ORT_ADAPTER = "adapter.onnx_adapter";

    /**
     * Multi-adapter serving with ONNX Runtime's {@code OrtLoraAdapter}: {@code model.onnx} is the PET graph in inference
     * mode whose trainable tensors are graph inputs defaulting to their initial values (for LoRA, B = 0: the base
     * model), and {@code adapter.onnx_adapter} holds the trained values; activating it in a run's options applies it.
     * Any number of adapters exported from the same config share the one model.
     */
    private static void exportOrtAdapter(RunSetup s, PetModel trained, Path dir) {
        // The trained model's structure (its adapter's config may differ from the run's), with initial values.
        PetModel initial = sameStructure(s.adapter, s.base, trained);
        Model serving = DecoderImporter.requireCacheInputs(trained.inferenceModel());
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
    public ModelInspection inspect(RunConfig config, RunEnvironment env) {
        RunSetup s = new RunSetup(config, env);
        long params = 0;
        for (Tensor t : s.pet.model().graph().initializers().values()) {
            if (t.dataType().isFloatingPoint()) {
                params += t.elementCount();
            }
        }
        Map<String, Long> ops = new TreeMap<>();
        for (Node n : s.pet.model().graph().nodes()) {
            ops.merge(n.opType(), 1L, Long::sum);
        }
        List<String> anatomy = new ArrayList<>(s.base.anatomy().describe());
        Object imported = s.base.config().get(PretrainedModel.IMPORT_REPORT);
        if (imported != null) {
            anatomy.addAll(List.of(imported.toString().split("\n")));
        }
        return new ModelInspection(s.base.name(), s.adapter.type(), params, s.pet.trainableParameterCount(), ops,
                anatomy);
    }
}
