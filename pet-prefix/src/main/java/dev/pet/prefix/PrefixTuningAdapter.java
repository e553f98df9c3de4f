package dev.pet.prefix;

import dev.pet.api.AdapterFiles;
import dev.pet.api.LayerAnatomy;
import dev.pet.api.MemoryBudget;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
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
 * Prefix tuning (Li and Liang; PEFT semantics): P trainable key and value vectors per layer are prepended to each
 * layer's keys and values, and each layer's attention bias gains P zero columns so every token attends to the
 * prefix. The prefixes come from a table {@code prefix_encoder.embedding.weight} [P, layers·2·hidden] laid out as
 * PEFT's past_key_values (index 2·layer for keys, 2·layer+1 for values), or through PEFT's reparameterisation
 * embedding [P, hidden] → Linear → Tanh → Linear. Adapter files hold PEFT's {@code prompt_embeddings} [P,
 * layers·2·hidden].
 */
public class PrefixTuningAdapter implements PetAdapter<PrefixConfig> {
    public static final String TABLE = "prefix_encoder.embedding.weight";
    public static final String W1 = "prefix_encoder.transform.0.weight";
    public static final String B1 = "prefix_encoder.transform.0.bias";
    public static final String W2 = "prefix_encoder.transform.2.weight";
    public static final String B2 = "prefix_encoder.transform.2.bias";
    public static final String FILE_KEY = "prompt_embeddings";

    @Override
    public String type() {
        return "prefix_tuning";
    }

    @Override
    public Set<String> aliases() {
        return Set.of("prefixtuning", "prefix");
    }

    protected boolean projectionAllowed() {
        return true;
    }

    /** Width of one layer's keys (or values): hidden size, or less with grouped-query attention. */
    static long tokenDim(ModelAnatomy a) {
        return a.numKeyValueHeads() * a.headDim();
    }

    @Override
    public Class<PrefixConfig> configType() {
        return PrefixConfig.class;
    }

    @Override
    public PrefixConfig parseConfig(Map<String, Object> raw) {
        return PrefixConfig.parse(type(), raw, projectionAllowed());
    }

    private static String importReport(PretrainedModel model) {
        Object r = model.config().get(PretrainedModel.IMPORT_REPORT);
        return r == null ? null : r.toString();
    }

    @Override
    public PetModel getPetModel(PretrainedModel model, PrefixConfig c) {
        ModelAnatomy a = model.anatomy();
        a.requireLayerParts(type() + " on " + model.name(), importReport(model), "key", "value", "attention_bias");
        if (a.numHeads() <= 0) {
            throw new PetException(type() + " on " + model.name() + " needs the number of attention heads, which "
                    + "the model does not say" + (importReport(model) == null ? "" : "\n" + importReport(model)));
        }
        if (a.positionIds() == null) {
            throw new PetException(type() + ": the anatomy of " + model.name() + " names no position ids; prefix "
                    + "tuning needs them to number the real tokens after the " + c.numVirtualTokens()
                    + " virtual ones, as PEFT does");
        }
        if (c.numVirtualTokens() >= model.maxPositions() && model.maxPositions() > 0) {
            throw new PetException(type() + ": num_virtual_tokens " + c.numVirtualTokens() + " leaves no position "
                    + "for real tokens in the " + model.maxPositions() + " positions of " + model.name());
        }
        int layers = a.layers().size();
        // PEFT's token_dim and num_attention_heads: with grouped-query attention, prefixes exist per key/value head.
        long hidden = tokenDim(a);
        long heads = a.numKeyValueHeads();
        long headDim = a.headDim();
        int p = c.numVirtualTokens();
        long width = layers * 2L * hidden;
        long perToken = c.prefixProjection() ? hidden : width;
        long projection = c.prefixProjection() ? MemoryBudget.add(MemoryBudget.multiply(hidden + 1,
                c.encoderHiddenSize()), MemoryBudget.multiply(c.encoderHiddenSize() + 1L, width)) : 0;
        MemoryBudget.requireTrainable(type() + ": num_virtual_tokens " + p + " on " + model.name(),
                MemoryBudget.add(MemoryBudget.multiply(p, perToken), projection), "num_virtual_tokens", perToken);
        Model m = model.model().copy();
        Graph g = m.graph();
        GraphBuilder b = new GraphBuilder(g, (int) m.opset());
        String old = b.setScope("prefix_encoder");
        Random rnd = new Random(c.seed());
        DataType dt = DataType.FLOAT;
        List<String> trainables = new ArrayList<>();
        Value table;
        if (!c.prefixProjection()) {
            table = b.initializer(TABLE, gaussian(rnd, 1.0, p, width));
            trainables.add(TABLE);
        } else {
            int mid = c.encoderHiddenSize();
            Value emb = b.initializer(TABLE, gaussian(rnd, 1.0, p, hidden));
            Value w1 = b.initializer(W1, uniform(rnd, 1 / Math.sqrt(hidden), hidden, mid));
            Value b1 = b.initializer(B1, uniform(rnd, 1 / Math.sqrt(hidden), mid));
            Value w2 = b.initializer(W2, uniform(rnd, 1 / Math.sqrt(mid), mid, width));
            Value b2 = b.initializer(B2, uniform(rnd, 1 / Math.sqrt(mid), width));
            table = b.add(b.matMul(b.tanh(b.add(b.matMul(emb, w1), b1)), w2), b2);
            trainables.addAll(List.of(TABLE, W1, B1, W2, B2));
        }
        // [P, L*2*H] -> [L*2, heads, P, headDim]: one slice per layer and kind, as PEFT splits past_key_values.
        Value kv = b.transpose(b.reshape(table, p, layers * 2L, heads, headDim), 1, 2, 0, 3);
        for (LayerAnatomy la : a.layers()) {
            b.setScope("prefix_encoder/layer" + la.index());
            Value key = g.requireValue(la.key());
            Value value = g.requireValue(la.value());
            Value bias = g.requireValue(la.attentionBias());
            Value batch = b.shape(key, 0, 1);
            Value expandTo = b.concat(List.of(batch, b.ints(heads, p, headDim)), 0);
            Value pk = b.expand(b.unsqueeze(b.gather(kv, b.scalarInt(2L * la.index()), 0), 0), expandTo);
            Value pv = b.expand(b.unsqueeze(b.gather(kv, b.scalarInt(2L * la.index() + 1), 0), 0), expandTo);
            // The expand shape is computed, so say what inference cannot: [batch, heads, P, headDim].
            dev.pet.onnx.ir.Dim batchDim = key.type().hasRank() ? key.type().dims().get(0)
                    : dev.pet.onnx.ir.Dim.unknown();
            TensorType prefixType = new TensorType(dt, List.of(batchDim, dev.pet.onnx.ir.Dim.of(heads),
                    dev.pet.onnx.ir.Dim.of(p), dev.pet.onnx.ir.Dim.of(headDim)));
            pk.setType(prefixType);
            pv.setType(prefixType);
            Value keys = b.concat(List.of(pk, key), 2);
            g.replaceUses(key, keys, keys.producer(), batch.producer());
            Value values = b.concat(List.of(pv, value), 2);
            g.replaceUses(value, values, values.producer());
            if (!bias.type().hasRank()) {
                throw new PetException(type() + ": the rank of attention bias '" + bias.name() + "' is unknown");
            }
            int rank = bias.type().rank();
            Value biasShape = b.shape(bias, 0, rank - 1);
            Value zeros = b.constantOfShape(b.concat(List.of(biasShape, b.ints(p)), 0),
                    Tensor.fromDoubles(GraphBuilder.elementType(bias), new double[] {0}, 1));
            Value widened = b.concat(List.of(zeros, bias), -1);
            g.replaceUses(bias, widened, widened.producer(), biasShape.producer());
        }
        // PEFT gives the model the prefix as its past, so Hugging Face models number the real tokens from P (learned
        // positions P..P+T-1, rotary angles likewise) while the prefix keys carry no position of their own.
        b.setScope("prefix_encoder");
        Value positions = g.requireValue(a.positionIds());
        Value shifted = b.add(positions, b.constant(Tensor.ofLongs(new long[] {p})));
        g.replaceUses(positions, shifted, shifted.producer());
        b.setScope(old);
        // Keys now run over P + T positions, so symbolic sizes recorded for computed values ("total_sequence") may
        // be stale and would mislead ONNX Runtime's memory planner. Keep ranks and fixed sizes, forget the symbols,
        // then let inference put back what it can prove.
        for (Node n : g.nodes()) {
            for (Value out : n.outputs()) {
                if (out != null && !out.isGraphOutput() && out.type().hasRank()) {
                    List<dev.pet.onnx.ir.Dim> dims = new ArrayList<>();
                    for (dev.pet.onnx.ir.Dim dim : out.type().dims()) {
                        dims.add(dim.isFixed() ? dim : dev.pet.onnx.ir.Dim.unknown());
                    }
                    out.setType(new TensorType(out.type().dataType(), dims));
                }
            }
        }
        dev.pet.onnx.build.ShapeInference.inferGraph(g, (int) m.opset());
        return new PetModel(model, m, trainables, c);
    }

    private static Tensor gaussian(Random r, double std, long... shape) {
        double[] v = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian() * std;
        }
        return Tensor.fromDoubles(DataType.FLOAT, v, shape);
    }

    private static Tensor uniform(Random r, double bound, long... shape) {
        double[] v = new double[(int) Tensor.checkedElementCount(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (r.nextDouble() * 2 - 1) * bound;
        }
        return Tensor.fromDoubles(DataType.FLOAT, v, shape);
    }

    /** The prefix table [P, layers·2·hidden] these trainable values produce (running the projection if any). */
    public static float[] promptEmbeddings(PrefixConfig c, Map<String, Tensor> t, long width) {
        if (!c.prefixProjection()) {
            return t.get(TABLE).toFloatArray();
        }
        float[] emb = t.get(TABLE).toFloatArray();
        float[] w1 = t.get(W1).toFloatArray();
        float[] b1 = t.get(B1).toFloatArray();
        float[] w2 = t.get(W2).toFloatArray();
        float[] b2 = t.get(B2).toFloatArray();
        int p = c.numVirtualTokens();
        int hidden = emb.length / p;
        int mid = c.encoderHiddenSize();
        float[] out = new float[(int) (p * width)];
        for (int i = 0; i < p; i++) {
            double[] h = new double[mid];
            for (int j = 0; j < mid; j++) {
                double s = b1[j];
                for (int k = 0; k < hidden; k++) {
                    s += emb[i * hidden + k] * (double) w1[k * mid + j];
                }
                h[j] = Math.tanh(s);
            }
            for (int o = 0; o < width; o++) {
                double s = b2[o];
                for (int j = 0; j < mid; j++) {
                    s += h[j] * w2[(int) (j * width + o)];
                }
                out[(int) (i * width + o)] = (float) s;
            }
        }
        return out;
    }

    @Override
    public void saveAdapter(PetModel model, Map<String, Tensor> trainables, Path directory) {
        PrefixConfig c = configOf(model);
        ModelAnatomy a = model.base().anatomy();
        long width = a.layers().size() * 2L * tokenDim(a);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        weights.put(FILE_KEY, Tensor.ofFloats(promptEmbeddings(c, trainables, width), c.numVirtualTokens(), width));
        if (c.prefixProjection()) {
            // PEFT saves only the projected table; the projection is kept too so training can resume from it.
            for (String k : List.of(TABLE, W1, B1, W2, B2)) {
                weights.put("pet." + k, trainables.get(k));
            }
        }
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "PREFIX_TUNING");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", model.base().name());
        cfg.put("num_virtual_tokens", c.numVirtualTokens());
        cfg.put("num_layers", a.layers().size());
        cfg.put("token_dim", tokenDim(a));
        cfg.put("num_attention_heads", a.numKeyValueHeads());
        cfg.put("prefix_projection", c.prefixProjection());
        cfg.put("encoder_hidden_size", c.encoderHiddenSize());
        cfg.put("num_transformer_submodules", 1);
        cfg.put("inference_mode", true);
        AdapterFiles.putModulesToSave(cfg, weights, model, algorithmTensors(c), trainables, MODULES_PREFIX);
        AdapterFiles.write(directory, cfg, weights);
    }

    /** Where PEFT puts modules_to_save tensors of a prompt-learning model: {@code base_model.<state-dict name>}. */
    public static final String MODULES_PREFIX = "base_model.";

    private static List<String> algorithmTensors(PrefixConfig c) {
        return c.prefixProjection() ? List.of(TABLE, W1, B1, W2, B2) : List.of(TABLE);
    }

    /**
     * PEFT's own config fixes the prefix length; {@code prefix_projection} holds only when the file also has the
     * projection (PEFT saves just the projected {@code prompt_embeddings}, which load as direct prefixes).
     */
    @Override
    public Map<String, Object> adapterPetConfig(Path directory) {
        Map<String, Object> cfg = AdapterFiles.readConfig(directory, "PREFIX_TUNING");
        Map<String, Object> out = new LinkedHashMap<>();
        Object p = cfg.get("num_virtual_tokens");
        if (p == null) {
            throw new PetException(directory.resolve(AdapterFiles.CONFIG_FILE) + ": num_virtual_tokens is missing");
        }
        out.put("num_virtual_tokens", p);
        boolean projection = Boolean.TRUE.equals(cfg.get("prefix_projection"))
                && AdapterFiles.readWeights(directory).containsKey("pet." + TABLE);
        out.put("prefix_projection", projection);
        if (projection && cfg.get("encoder_hidden_size") != null) {
            out.put("encoder_hidden_size", cfg.get("encoder_hidden_size"));
        }
        return out;
    }

    @Override
    public PetModel loadAdapter(PetModel model, Path directory) {
        PrefixConfig c = configOf(model);
        Map<String, Object> cfg = AdapterFiles.readConfig(directory, "PREFIX_TUNING");
        Map<String, Tensor> w = AdapterFiles.readWeights(directory);
        ModelAnatomy a = model.base().anatomy();
        Path file = directory.resolve(AdapterFiles.CONFIG_FILE);
        agrees(file, cfg, "num_virtual_tokens", c.numVirtualTokens(), "the run's num_virtual_tokens");
        agrees(file, cfg, "num_layers", a.layers().size(), model.base().name() + "'s layer count");
        agrees(file, cfg, "token_dim", tokenDim(a), model.base().name() + "'s key/value width");
        agrees(file, cfg, "num_attention_heads", a.numKeyValueHeads(), model.base().name() + "'s key/value heads");
        long width = a.layers().size() * 2L * tokenDim(a);
        Map<String, Tensor> values = new LinkedHashMap<>();
        List<String> consumed = new ArrayList<>();
        if (!c.prefixProjection()) {
            values.put(TABLE, AdapterFiles.require(directory, w, FILE_KEY, c.numVirtualTokens(), width));
            consumed.add(FILE_KEY);
        } else {
            for (String k : algorithmTensors(c)) {
                Tensor t = w.get("pet." + k);
                if (t == null) {
                    throw new PetException(directory + ": adapter has only PEFT's projected prompt_embeddings; "
                            + "load it with prefix_projection: false");
                }
                values.put(k, t);
                consumed.add("pet." + k);
            }
        }
        return AdapterFiles.withModulesToSave(model.withTrainables(values), directory, cfg, w, MODULES_PREFIX,
                consumed);
    }

    /** An adapter_config.json number that, when present, must equal what the model has. */
    private static void agrees(Path file, Map<String, Object> cfg, String key, long expected, String what) {
        Object v = cfg.get(key);
        if (v != null && !(v instanceof Number n && n.doubleValue() == expected)) {
            throw new PetException(file + ": " + key + " is " + v + " but " + what + " is " + expected);
        }
    }
}
