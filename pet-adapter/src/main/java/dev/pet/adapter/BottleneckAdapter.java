package dev.pet.adapter;

import dev.pet.api.AdapterFiles;
import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetConfig;
import dev.pet.api.PetConfigException;
import dev.pet.api.PetConfigs;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
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
 * Houlsby bottleneck adapters (MindPet {@code AdapterLayer}): after the attention output projection and after the MLP
 * output of every block, before the residual add, h ↦ h + up(act(down(h))) with down [hidden, bottleneck] and up
 * [bottleneck, hidden] (plus biases). The up-projection starts at zero, so the model starts unchanged. The adapters
 * are named after the modules whose outputs they adapt, in the family's own state-dict names: the parent module of
 * the attention output projection and of the MLP output projection plus {@code .adapter} (GPT-2
 * {@code transformer.h.N.attn.adapter}, {@code transformer.h.N.mlp.adapter}; Llama {@code model.layers.N.self_attn
 * .adapter}, {@code model.layers.N.mlp.adapter}). Files: {@code adapter_config.json} (peft_type
 * {@code BOTTLENECK_ADAPTER}) and {@code adapter_model.safetensors} with the graph's tensor names.
 */
public final class BottleneckAdapter implements PetAdapter<BottleneckAdapter.Config> {
    /** Options: bottleneck width and non-linearity ({@code gelu}, {@code relu}, {@code tanh}). */
    public record Config(int bottleneckSize, String nonLinearity, long seed) implements PetConfig {
        public Config {
            if (bottleneckSize < 1) {
                throw new PetConfigException("adapter", "bottleneck_size", "must be >= 1, found " + bottleneckSize);
            }
            if (!Set.of("gelu", "relu", "tanh").contains(nonLinearity)) {
                throw new PetConfigException("adapter", "non_linearity", "must be gelu, relu or tanh, found '"
                        + nonLinearity + "'");
            }
        }

        @Override
        public String petType() {
            return "adapter";
        }
    }

    private static final Map<String, String> KEYS = Map.of("bottleneck_size", "bottleneck_size",
            "reduction_factor", "bottleneck_size", "non_linearity", "non_linearity", "nonlinearity", "non_linearity",
            "seed", "seed", "task_type", "task_type");

    @Override
    public String type() {
        return "adapter";
    }

    @Override
    public Set<String> aliases() {
        return Set.of("houlsby", "bottleneck_adapter");
    }

    @Override
    public Class<Config> configType() {
        return Config.class;
    }

    @Override
    public Config parseConfig(Map<String, Object> raw) {
        PetConfigs v = PetConfigs.bind(type(), raw, KEYS);
        int size = v.integer("bottleneck_size", 64);
        String act = v.string("non_linearity", "gelu").toLowerCase(java.util.Locale.ROOT);
        long seed = v.longValue("seed", 42);
        return v.build(() -> new Config(size, act, seed));
    }

    /** The adapter's own tensors on this model, in graph order. */
    static List<String> tensors(PretrainedModel model) {
        List<String> out = new ArrayList<>();
        for (LayerAnatomy la : model.anatomy().layers()) {
            for (String site : sites(model, la)) {
                for (String t : TENSORS) {
                    out.add(site + t);
                }
            }
        }
        return out;
    }

    private static final List<String> TENSORS = List.of(".down.weight", ".down.bias", ".up.weight", ".up.bias");

    @Override
    public Map<String, Object> adapterPetConfig(Path directory) {
        Map<String, Object> cfg = AdapterFiles.readConfig(directory, "BOTTLENECK_ADAPTER");
        Map<String, Object> out = new LinkedHashMap<>();
        for (String k : List.of("bottleneck_size", "non_linearity")) {
            if (cfg.get(k) != null) {
                out.put(k, cfg.get(k));
            }
        }
        return out;
    }

    /** The two adapters of a block: after the attention output and after the MLP output, in that order. */
    static List<String> sites(PretrainedModel model, LayerAnatomy la) {
        return List.of(moduleOf(model, la.index(), la.attentionOutput(), "attention output") + ".adapter",
                moduleOf(model, la.index(), la.mlpOutput(), "MLP output") + ".adapter");
    }

    /**
     * The state-dict module holding the linear that produces {@code value}, e.g. {@code model.layers.0.self_attn}
     * for {@code o_proj}: the anatomy's linear of that block whose output {@code value} is, looking through the
     * single-input steps (Identity, Reshape, Dropout, Cast) that separate them in built and imported graphs.
     */
    private static String moduleOf(PretrainedModel model, int layer, String value, String what) {
        Graph g = model.model().graph();
        String v = value;
        for (int step = 0; v != null && step < 8; step++) {
            for (LinearModule lm : model.anatomy().linears()) {
                if (lm.layer() == layer && lm.output().equals(v) && lm.path().contains(".")) {
                    return lm.path().substring(0, lm.path().lastIndexOf('.'));
                }
            }
            Value current = g.value(v);
            Node producer = current == null ? null : current.producer();
            v = producer != null && PASS_THROUGH.contains(producer.opType()) ? producer.inputs().get(0).name() : null;
        }
        throw new PetException("adapter on " + model.name() + ": the " + what + " of layer " + layer + " ('" + value
                + "') comes from none of the model's linear modules, so its adapter cannot be named after one");
    }

    private static final Set<String> PASS_THROUGH = Set.of("Identity", "Reshape", "Dropout", "Cast");

    @Override
    public PetModel getPetModel(PretrainedModel model, Config c) {
        Object report = model.config().get(PretrainedModel.IMPORT_REPORT);
        model.anatomy().requireLayerParts(type() + " on " + model.name(), report == null ? null : report.toString(),
                "attention_output", "mlp_output");
        Model m = model.model().copy();
        Graph g = m.graph();
        GraphBuilder b = new GraphBuilder(g, (int) m.opset());
        long hidden = model.anatomy().hiddenSize();
        int k = c.bottleneckSize();
        Random rnd = new Random(c.seed());
        List<String> trainables = new ArrayList<>();
        for (LayerAnatomy la : model.anatomy().layers()) {
            List<String> names = sites(model, la);
            List<String> values = List.of(la.attentionOutput(), la.mlpOutput());
            for (int s = 0; s < 2; s++) {
                String site = names.get(s);
                String old = b.setScope(site);
                Value h = g.requireValue(values.get(s));
                double bound = 1 / Math.sqrt(hidden);
                Value down = b.initializer(site + ".down.weight", uniform(rnd, bound, hidden, k));
                Value downB = b.initializer(site + ".down.bias", Tensor.zeros(DataType.FLOAT, k));
                Value up = b.initializer(site + ".up.weight", Tensor.zeros(DataType.FLOAT, k, hidden));
                Value upB = b.initializer(site + ".up.bias", Tensor.zeros(DataType.FLOAT, hidden));
                Value z = b.add(b.matMul(h, down), downB);
                z = switch (c.nonLinearity()) {
                    case "relu" -> b.relu(z);
                    case "tanh" -> b.tanh(z);
                    default -> b.gelu(z, "none");
                };
                Value out = b.add(h, b.add(b.matMul(z, up), upB));
                g.replaceUses(h, out, out.producer(), down.uses().get(0));
                b.setScope(old);
                for (String t : TENSORS) {
                    trainables.add(site + t);
                }
            }
        }
        if (trainables.isEmpty()) {
            throw new PetException("adapter: " + model.name() + " describes no layers to adapt");
        }
        return new PetModel(model, m, trainables, c);
    }

    private static Tensor uniform(Random r, double bound, long... shape) {
        double[] v = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (r.nextDouble() * 2 - 1) * bound;
        }
        return Tensor.fromDoubles(DataType.FLOAT, v, shape);
    }

    @Override
    public void saveAdapter(PetModel model, Map<String, Tensor> trainables, Path directory) {
        Config c = configOf(model);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "BOTTLENECK_ADAPTER");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", model.base().name());
        cfg.put("bottleneck_size", c.bottleneckSize());
        cfg.put("non_linearity", c.nonLinearity());
        cfg.put("placement", "after attention output and MLP output, before each residual add");
        AdapterFiles.writeTrainables(directory, cfg, model, tensors(model.base()), trainables);
    }

    @Override
    public PetModel loadAdapter(PetModel model, Path directory) {
        return AdapterFiles.readTrainables(model, directory, "BOTTLENECK_ADAPTER", tensors(model.base()));
    }
}
