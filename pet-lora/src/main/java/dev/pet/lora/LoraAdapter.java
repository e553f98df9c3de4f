package dev.pet.lora;

import dev.pet.api.AdapterFiles;
import dev.pet.api.LinearModule;
import dev.pet.api.MemoryBudget;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TargetModules;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * LoRA (Hu et al.; Hugging Face PEFT semantics): each targeted projection y = xW + b gains a low-rank branch,
 * y' = y + s · (dropout(x) Aᵀ) Bᵀ with A [r, in], B [out, r] and s = alpha/r (alpha/√r with rsLoRA). In the graph the
 * factors are stored transposed ({@code <module>.lora_A} [in, r], {@code <module>.lora_B} [r, out]) so the branch is
 * two plain MatMuls; adapter files use PEFT's orientation and key names.
 */
public final class LoraAdapter implements PetAdapter<LoraConfig> {
    public static final String CONFIG_FILE = AdapterFiles.CONFIG_FILE;
    public static final String WEIGHTS_FILE = AdapterFiles.WEIGHTS_FILE;

    @Override
    public String type() {
        return "lora";
    }

    @Override
    public Set<String> aliases() {
        return Set.of("gpt2withlora");
    }

    @Override
    public Class<LoraConfig> configType() {
        return LoraConfig.class;
    }

    @Override
    public LoraConfig parseConfig(Map<String, Object> raw) {
        return LoraConfig.parse(raw);
    }

    /** Internal (graph) name of a module's A factor, stored [in, r]. */
    public static String aName(String module) {
        return module + ".lora_A";
    }

    /** Internal (graph) name of a module's B factor, stored [r, out]. */
    public static String bName(String module) {
        return module + ".lora_B";
    }

    /** PEFT key of a module's A factor ([r, in] in the file). */
    public static String peftAKey(String module) {
        return "base_model.model." + module + ".lora_A.weight";
    }

    /** PEFT key of a module's B factor ([out, r] in the file). */
    public static String peftBKey(String module) {
        return "base_model.model." + module + ".lora_B.weight";
    }

    /** The modules this config adapts; targeting nothing is an error that lists the candidates. */
    public static List<LinearModule> targets(PretrainedModel model, LoraConfig c) {
        return c.targets().select(LoraConfig.TYPE, model);
    }

    @Override
    public PetModel getPetModel(PretrainedModel model, LoraConfig c) {
        Model m = model.model().copy();
        Graph g = m.graph();
        GraphBuilder b = new GraphBuilder(g, (int) m.opset());
        List<String> trainables = new ArrayList<>();
        Random rnd = new Random(c.seed());
        List<LinearModule> targets = targets(model, c);
        long parameters = 0;
        long perRank = 0;
        for (LinearModule lm : targets) {
            int r = c.rankFor(lm.path());
            long in = lm.inFeatures();
            long out = lm.outFeatures();
            if (r > Math.min(in, out)) {
                throw new PetException("lora: r " + r + " for " + lm.path() + " exceeds min(in " + in + ", out " + out
                        + "): an update of that module has rank at most " + Math.min(in, out));
            }
            parameters = MemoryBudget.add(parameters, MemoryBudget.multiply(r, in + out));
            perRank += in + out;
        }
        MemoryBudget.requireTrainable(type() + ": lora_rank " + c.rank() + " on " + targets.size() + " modules of "
                + model.name(), parameters, "lora_rank", perRank);
        for (LinearModule lm : targets) {
            int r = c.rankFor(lm.path());
            long in = lm.inFeatures();
            long out = lm.outFeatures();
            DataType dt = g.requireValue(lm.input()).type().dataType(); // the weight may be quantized
            Tensor a = init(c.aInit(), in, r, in, r, rnd, dt, true);
            Tensor bt = init(c.bInit(), r, out, r, r, rnd, dt, false);
            String old = b.setScope(lm.path() + "/lora");
            Value x = g.requireValue(lm.input());
            Value y = g.requireValue(lm.output());
            Value branchIn = x;
            if (c.dropout() > 0) {
                branchIn = b.dropout(x, b.constant(dt, c.dropout()),
                        b.constant(Tensor.ofBools(new boolean[] {true}))).output(0);
            }
            Value av = b.initializer(aName(lm.path()), a);
            Value bv = b.initializer(bName(lm.path()), bt);
            Value delta = b.mul(b.matMul(b.matMul(branchIn, av), bv), b.constant(dt, c.scalingFor(lm.path())));
            Value sum = b.add(y, delta);
            g.replaceUses(y, sum, sum.producer());
            b.setScope(old);
            trainables.add(aName(lm.path()));
            trainables.add(bName(lm.path()));
        }
        return new PetModel(model, m, trainables, c);
    }

    /** The A and B factor names (graph names) of every targeted module. */
    static List<String> factorNames(PretrainedModel model, LoraConfig c) {
        List<String> out = new ArrayList<>();
        for (LinearModule lm : targets(model, c)) {
            out.add(aName(lm.path()));
            out.add(bName(lm.path()));
        }
        return out;
    }

    /**
     * A factor in graph layout [rows, cols]; {@code fanIn} follows PEFT's [r, in] view of A (fan-in = in) so the
     * Kaiming bound is 1/√in as in {@code nn.init.kaiming_uniform_(a=√5)}.
     */
    private static Tensor init(String kind, long rows, long cols, long fanIn, int r, Random rnd, DataType dt,
            boolean isA) {
        int n = Math.toIntExact(rows * cols);
        double[] v = new double[n];
        switch (kind) {
            case "zeros" -> { }
            case "ones" -> java.util.Arrays.fill(v, 1);
            case "kaiming_uniform" -> {
                double bound = 1 / Math.sqrt(isA ? rows : fanIn);
                for (int i = 0; i < n; i++) {
                    v[i] = (rnd.nextDouble() * 2 - 1) * bound;
                }
            }
            case "gaussian" -> {
                for (int i = 0; i < n; i++) {
                    v[i] = rnd.nextGaussian() / r;
                }
            }
            case "normal" -> {
                for (int i = 0; i < n; i++) {
                    v[i] = rnd.nextGaussian() * 0.01;
                }
            }
            case "xavier_uniform" -> {
                double bound = Math.sqrt(6.0 / (rows + cols));
                for (int i = 0; i < n; i++) {
                    v[i] = (rnd.nextDouble() * 2 - 1) * bound;
                }
            }
            default -> throw new PetException("lora: unknown initialiser " + kind);
        }
        return Tensor.fromDoubles(dt, v, rows, cols);
    }

    @Override
    public void saveAdapter(PetModel model, Map<String, Tensor> trainables, Path directory) {
        LoraConfig c = configOf(model);
        Map<String, Tensor> file = new LinkedHashMap<>();
        List<String> modules = new ArrayList<>();
        boolean fanInFanOut = false;
        for (LinearModule lm : targets(model.base(), c)) {
            Tensor a = require(trainables, aName(lm.path()));
            Tensor bt = require(trainables, bName(lm.path()));
            file.put(peftAKey(lm.path()), transpose(a).castTo(DataType.FLOAT));
            file.put(peftBKey(lm.path()), transpose(bt).castTo(DataType.FLOAT));
            modules.add(lm.path());
            fanInFanOut |= lm.weightInOut();
        }
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "LORA");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", model.base().name());
        cfg.put("r", c.rank());
        cfg.put("lora_alpha", c.alpha());
        cfg.put("lora_dropout", c.dropout());
        TargetModules t = c.targets();
        cfg.put("target_modules", t.isDefault() ? model.base().anatomy().defaultTargetModules()
                : t.targetModulesValue());
        cfg.put("exclude_modules", t.excludeRegex() != null ? t.excludeRegex()
                : t.excludeNames().isEmpty() ? null : t.excludeNames());
        cfg.put("layers_to_transform", t.layers().isEmpty() ? null : t.layers());
        cfg.put("layers_pattern", t.layersPattern().isEmpty() ? null : t.layersPattern());
        cfg.put("rank_pattern", c.rankPattern());
        cfg.put("alpha_pattern", c.alphaPattern());
        cfg.put("use_rslora", c.useRslora());
        cfg.put("fan_in_fan_out", fanInFanOut);
        cfg.put("bias", "none");
        cfg.put("init_lora_weights", c.aInit().equals("gaussian") ? "gaussian" : true);
        AdapterFiles.putModulesToSave(cfg, file, model, factorNames(model.base(), c), trainables,
                AdapterFiles.MODULES_PREFIX);
        cfg.put("inference_mode", true);
        AdapterFiles.write(directory, cfg, file);
    }

    /** PEFT's config keys that fix what a LoRA adapter means (dropout and initialisation only shape training). */
    private static final List<String> DEFINING_KEYS = List.of("r", "lora_alpha", "target_modules", "use_rslora",
            "rank_pattern", "alpha_pattern", "layers_to_transform", "layers_pattern", "exclude_modules", "bias");

    /**
     * r, lora_alpha, target_modules, use_rslora, rank/alpha patterns, layers_to_transform and exclude_modules of the
     * file, validated (r = 0 or a non-integer is an error naming the file). Features that would change the update's
     * meaning and that this LoRA lacks (DoRA, LoRA bias) are refused. {@code fan_in_fan_out} only says how the base
     * weight is laid out; PEFT itself overrides it per layer type (true for GPT-2's Conv1D), and the factors' shapes
     * do not depend on it, so it must be a boolean but is otherwise taken from the model.
     */
    @Override
    public Map<String, Object> adapterPetConfig(Path directory) {
        Map<String, Object> cfg = AdapterFiles.readConfig(directory, "LORA");
        Path file = directory.resolve(CONFIG_FILE);
        for (String k : List.of("use_dora", "lora_bias")) {
            if (Boolean.TRUE.equals(cfg.get(k))) {
                throw new PetException(file + ": " + k + " is true, which PET Runtime's LoRA does not implement; "
                        + "loading it as plain LoRA would change what the adapter computes");
            }
        }
        Object fanInFanOut = cfg.get("fan_in_fan_out");
        if (fanInFanOut != null && !(fanInFanOut instanceof Boolean)) {
            throw new PetException(file + ": fan_in_fan_out must be true or false, found " + fanInFanOut);
        }
        if (cfg.get("r") == null) {
            throw new PetException(file + ": r is missing");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (String k : DEFINING_KEYS) {
            if (cfg.get(k) != null) {
                out.put(k, cfg.get(k));
            }
        }
        try {
            LoraConfig.parse(out);
        } catch (PetException e) {
            throw new PetException(file + ": " + e.getMessage(), e);
        }
        return out;
    }

    /**
     * Loads an adapter into a model whose config must agree with the file's: the same modules, and per module the
     * same r, lora_alpha and rsLoRA choice (an error names the file's value and the run's); tensor shapes are checked
     * against the file's r. {@code modules_to_save} tensors become trainable with their saved values.
     */
    @Override
    public PetModel loadAdapter(PetModel model, Path directory) {
        LoraConfig c = configOf(model);
        Map<String, Object> rawConfig = AdapterFiles.readConfig(directory, "LORA");
        Path cfgFile = directory.resolve(CONFIG_FILE);
        LoraConfig theirs = LoraConfig.parse(adapterPetConfig(directory));
        List<String> mine = targets(model.base(), c).stream().map(LinearModule::path).toList();
        List<String> fileModules;
        try {
            fileModules = targets(model.base(), theirs).stream().map(LinearModule::path).toList();
        } catch (PetException e) {
            throw new PetException(cfgFile + ": " + e.getMessage(), e);
        }
        if (!mine.equals(fileModules)) {
            throw new PetException(cfgFile + ": its target_modules select " + fileModules
                    + " but the run's config selects " + mine);
        }
        for (LinearModule lm : targets(model.base(), c)) {
            String p = lm.path();
            disagree(cfgFile, "r", p, theirs.rankFor(p), c.rankFor(p));
            disagree(cfgFile, "lora_alpha", p, theirs.alphaFor(p), c.alphaFor(p));
            if (theirs.useRslora() != c.useRslora()) {
                throw new PetException(cfgFile + ": use_rslora is " + theirs.useRslora() + " but the run's config "
                        + "says " + c.useRslora());
            }
        }
        Path weights = directory.resolve(WEIGHTS_FILE);
        Map<String, Tensor> file = AdapterFiles.readWeights(directory);
        Map<String, Tensor> values = new LinkedHashMap<>();
        List<String> consumed = new ArrayList<>();
        for (LinearModule lm : targets(model.base(), c)) {
            consumed.add(peftAKey(lm.path()));
            consumed.add(peftBKey(lm.path()));
            Tensor a = file.get(peftAKey(lm.path()));
            Tensor bt = file.get(peftBKey(lm.path()));
            if (a == null || bt == null) {
                throw new PetException(weights + ": no LoRA weights for module " + lm.path() + " (expected keys "
                        + peftAKey(lm.path()) + " and " + peftBKey(lm.path()) + ")");
            }
            int r = c.rankFor(lm.path());
            checkShape(weights, peftAKey(lm.path()), a, r, lm.inFeatures());
            checkShape(weights, peftBKey(lm.path()), bt, lm.outFeatures(), r);
            values.put(aName(lm.path()), transpose(a));
            values.put(bName(lm.path()), transpose(bt));
        }
        return AdapterFiles.withModulesToSave(model.withTrainables(values), directory, rawConfig, file,
                AdapterFiles.MODULES_PREFIX, consumed);
    }

    private static void disagree(Path file, String key, String module, double theirs, double mine) {
        if (theirs != mine) {
            throw new PetException(file + ": " + key + " for " + module + " is " + fmt(theirs) + " but the run's "
                    + "config gives " + fmt(mine) + "; the adapter's own config defines it");
        }
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    private static void checkShape(Path file, String key, Tensor t, long rows, long cols) {
        long[] s = t.shape();
        if (s.length != 2 || s[0] != rows || s[1] != cols) {
            throw new PetException(file + ": '" + key + "' has shape " + java.util.Arrays.toString(s) + ", expected ["
                    + rows + ", " + cols + "] for the r in " + CONFIG_FILE);
        }
    }

    @Override
    public Model mergedModel(PetModel model, Map<String, Tensor> trainables) {
        return merge(model, trainables);
    }

    /**
     * The base model with every adapted weight folded in: W + s·(B·A)ᵀ for [in, out] weights, W + s·B·A for
     * [out, in]; computed in float32 and checked to be finite.
     */
    public static Model merge(PetModel model, Map<String, Tensor> trainables) {
        LoraConfig c = new LoraAdapter().configOf(model);
        Model m = model.base().model().copy();
        for (LinearModule lm : targets(model.base(), c)) {
            Tensor w = m.graph().initializer(lm.weight());
            float[] wv = w.toFloatArray();
            float[] a = require(trainables, aName(lm.path())).toFloatArray();
            float[] bt = require(trainables, bName(lm.path())).toFloatArray();
            int in = (int) lm.inFeatures();
            int out = (int) lm.outFeatures();
            int r = c.rankFor(lm.path());
            float s = (float) c.scalingFor(lm.path());
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    float d = 0;
                    for (int k = 0; k < r; k++) {
                        d += a[i * r + k] * bt[k * out + o];
                    }
                    int idx = lm.weightInOut() ? i * out + o : o * in + i;
                    wv[idx] += s * d;
                    if (!Float.isFinite(wv[idx])) {
                        throw new PetException("merging LoRA into " + lm.weight() + " gives a non-finite value");
                    }
                }
            }
            m.graph().setInitializer(lm.weight(), Tensor.ofFloats(wv, w.shape()).castTo(w.dataType()));
        }
        // Base tensors trained beside LoRA (modules_to_save) take their trained values.
        List<String> factors = factorNames(model.base(), c);
        for (String t : model.trainables()) {
            if (!factors.contains(t)) {
                Tensor v = require(trainables, t);
                m.graph().setInitializer(t, v.castTo(m.graph().initializer(t).dataType()));
            }
        }
        m.metadata().put("pet.merged", "lora r=" + c.rank() + " alpha=" + c.alpha());
        return m;
    }

    private static Tensor require(Map<String, Tensor> t, String name) {
        Tensor v = t.get(name);
        if (v == null) {
            throw new PetException("missing LoRA tensor '" + name + "'");
        }
        return v;
    }

    static Tensor transpose(Tensor t) {
        long[] s = t.shape();
        int rows = (int) s[0];
        int cols = (int) s[1];
        double[] v = t.toDoubleArray();
        double[] o = new double[v.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                o[j * rows + i] = v[i * cols + j];
            }
        }
        return Tensor.fromDoubles(t.dataType(), o, cols, rows);
    }
}
