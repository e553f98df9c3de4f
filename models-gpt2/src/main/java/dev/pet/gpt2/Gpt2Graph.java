package dev.pet.gpt2;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.hf.CausalAttention;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The GPT-2 forward graph ({@code GPT2LMHeadModel} semantics) built with {@link GraphBuilder}: token and position
 * embeddings, pre-LayerNorm blocks with a fused {@code c_attn} projection split into q/k/v, causal scaled
 * dot-product attention with an additive bias (padding and causality, using the most negative finite value of the
 * float type), {@code gelu_new} MLPs, a final LayerNorm and an LM head tied to {@code wte} (a MatMul with the
 * transposed embedding; no second copy of the weight).
 *
 * <p>Initializers carry the Hugging Face state-dict names. Inputs: {@code input_ids} [batch, sequence] int64 and,
 * as {@link CausalLmGraphOptions} selects, {@code attention_mask} [batch, past+sequence], {@code position_ids}
 * [batch, sequence], {@code past_key_values.{i}.key/value} [batch, heads, past, headDim]. Outputs: {@code logits}
 * [batch, sequence, vocab] and optionally {@code present.{i}.key/value} (Optimum naming).
 *
 * <p>Every value the anatomy names has exactly the consumers a PET method should redirect: the keys, values and
 * attention bias of a block are Identity copies read only by that block's attention; the attention and MLP outputs
 * are Identity copies read only by the residual adds (so LoRA on {@code c_proj} and an adapter after it compose);
 * the {@code present} outputs are not affected by rewiring the keys and values that enter attention.
 *
 * @param model   the ONNX model
 * @param anatomy where PET methods attach
 * @param options the inputs and outputs it was built with
 * @param config  the model configuration
 */
public record Gpt2Graph(Model model, ModelAnatomy anatomy, CausalLmGraphOptions options, Gpt2Config config) {
    public static final String INPUT_IDS = CausalLmNames.INPUT_IDS;
    public static final String ATTENTION_MASK = CausalLmNames.ATTENTION_MASK;
    public static final String POSITION_IDS = CausalLmNames.POSITION_IDS;
    public static final String LOGITS = CausalLmNames.LOGITS;
    /** LoRA's default {@code target_modules} for GPT-2, as in PEFT's per-model-type table. */
    public static final List<String> DEFAULT_TARGET_MODULES = List.of("c_attn");
    /** The value of the input positions as the position embedding reads them (the anatomy's positionIds). */
    public static final String POSITIONS_VALUE = "/transformer/position_ids";
    /** Model metadata key holding the config as {@code config.json} text. */
    public static final String CONFIG_METADATA = "gpt2.config";

    public Gpt2Graph {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(anatomy, "anatomy");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(config, "config");
    }

    public static String pastKey(int layer) {
        return CausalLmNames.pastKey(layer);
    }

    public static String pastValue(int layer) {
        return CausalLmNames.pastValue(layer);
    }

    public static String presentKey(int layer) {
        return CausalLmNames.presentKey(layer);
    }

    public static String presentValue(int layer) {
        return CausalLmNames.presentValue(layer);
    }

    /** The most negative finite value of a float type, used as the additive bias of masked keys. */
    public static double maskValue(DataType t) {
        return CausalAttention.maskValue(t);
    }

    /** Builds the graph for these weights. */
    public static Gpt2Graph build(Gpt2Weights weights, CausalLmGraphOptions options) {
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(options, "options");
        return new Builder(weights, options).build();
    }

    private static final class Builder {
        private final Gpt2Weights weights;
        private final CausalLmGraphOptions o;
        private final Gpt2Config c;
        private final DataType dt;
        private final Graph g = new Graph("gpt2");
        private final GraphBuilder b;
        private final List<Value[]> layerValues = new ArrayList<>();
        private final List<Object[]> linears = new ArrayList<>();

        Builder(Gpt2Weights weights, CausalLmGraphOptions options) {
            this.weights = weights;
            this.o = options;
            this.c = weights.config();
            this.dt = options.dataType();
            this.b = new GraphBuilder(g, options.opset());
        }

        private Value param(String name) {
            String full = Gpt2Weights.PREFIX + name;
            Value existing = g.value(full);
            if (existing != null) {
                return existing;
            }
            Tensor t = weights.get(full);
            return b.initializer(full, dt == DataType.FLOAT ? t : t.castTo(dt));
        }

        private Value named(Value v, String name) {
            v.rename(g.uniqueName(name));
            return v;
        }

        private Value linear(String path, int layer, Value x, long in, long out) {
            String rel = path.substring(Gpt2Weights.PREFIX.length());
            Value y = b.add(b.matMul(x, param(rel + ".weight")), param(rel + ".bias"));
            linears.add(new Object[] {path, x, y, in, out, layer});
            return y;
        }

        Gpt2Graph build() {
            long e = c.nEmbd();
            long heads = c.nHead();
            long hd = c.headDim();
            boolean past = o.kvCache() == CausalLmGraphOptions.KvCache.PAST_AND_PRESENT;
            Value ids = b.input(INPUT_IDS, TensorType.symbolic(DataType.INT64, "batch", "sequence"));
            // Without a past the mask covers exactly the new tokens (see LlamaGraph: one known attention shape).
            Value mask = o.attentionMask() ? b.input(ATTENTION_MASK, TensorType.symbolic(DataType.INT64, "batch",
                    past ? "total_sequence" : "sequence")) : null;
            Value positionIds = o.positionIds()
                    ? b.input(POSITION_IDS, TensorType.symbolic(DataType.INT64, "batch", "sequence"))
                    : null;
            List<Value> pastKeys = new ArrayList<>();
            List<Value> pastValues = new ArrayList<>();
            if (past) {
                TensorType kv = TensorType.symbolic(dt, "batch", heads, "past_sequence", hd);
                for (int i = 0; i < c.nLayer(); i++) {
                    pastKeys.add(b.input(pastKey(i), kv));
                    pastValues.add(b.input(pastValue(i), kv));
                }
            }

            // Positions of the new tokens (past .. past+seq) and of all keys (0 .. past+seq).
            b.setScope("/transformer");
            Value one = b.scalarInt(1);
            Value seqLen = b.gather(b.shape(ids), one, 0);
            Value queryPos;
            Value keyPos;
            if (past) {
                Value pastLen = b.gather(b.shape(pastKeys.get(0)), b.scalarInt(2), 0);
                Value total = b.add(pastLen, seqLen);
                queryPos = b.range(pastLen, total, one);
                keyPos = b.range(b.scalarInt(0), total, one);
            } else {
                queryPos = b.range(b.scalarInt(0), seqLen, one);
                keyPos = queryPos;
            }

            b.setScope("/transformer/wte");
            Value tokens = b.gather(param("wte.weight"), ids, 0);
            b.setScope("/transformer/wpe");
            // An Identity read only by the position embedding: the anatomy's positionIds (prefix tuning shifts it).
            Value positionsIn = named(b.identity(positionIds != null ? positionIds : b.unsqueeze(queryPos, 0)),
                    POSITIONS_VALUE);
            Value positions = b.gather(param("wpe.weight"), positionsIn, 0);
            b.setScope("/transformer");
            Value h = b.add(tokens, positions);

            Value bias = attentionBias(mask, queryPos, keyPos);

            for (int i = 0; i < c.nLayer(); i++) {
                String scope = "/transformer/h." + i;
                String path = Gpt2Weights.PREFIX + "h." + i;
                b.setScope(scope + "/ln_1");
                Value ln1 = b.layerNorm(h, param("h." + i + ".ln_1.weight"), param("h." + i + ".ln_1.bias"),
                        (float) c.layerNormEpsilon());
                b.setScope(scope + "/attn/c_attn");
                Value qkv = linear(path + ".attn.c_attn", i, ln1, e, 3 * e);
                b.setScope(scope + "/attn");
                List<Value> parts = b.split(qkv, 2, e, e, e);
                Value q = splitHeads(parts.get(0), heads, hd);
                Value k = splitHeads(parts.get(1), heads, hd);
                Value v = splitHeads(parts.get(2), heads, hd);
                if (past) {
                    k = b.concat(List.of(pastKeys.get(i), k), 2);
                    v = b.concat(List.of(pastValues.get(i), v), 2);
                }
                if (o.kvCache() != CausalLmGraphOptions.KvCache.NONE) {
                    b.output(k, presentKey(i));
                    b.output(v, presentValue(i));
                }
                Value key = named(b.identity(k), scope + "/attn/key");
                Value value = named(b.identity(v), scope + "/attn/value");
                Value scores = b.matMul(q, b.transpose(key, 0, 1, 3, 2));
                double scale = (c.scaleAttnWeights() ? 1.0 / Math.sqrt(hd) : 1.0)
                        / (c.scaleAttnByInverseLayerIdx() ? i + 1 : 1);
                if (scale != 1.0) {
                    scores = b.mul(scores, b.constant(dt, scale));
                }
                Value layerBias = named(b.identity(bias), scope + "/attn/attention_bias");
                Value probs = b.softmax(b.add(scores, layerBias), -1);
                Value context = b.matMul(probs, value);
                Value merged = b.reshape(b.transpose(context, 0, 2, 1, 3), 0, 0, e);
                b.setScope(scope + "/attn/c_proj");
                Value proj = linear(path + ".attn.c_proj", i, merged, e, e);
                b.setScope(scope);
                Value attnOut = named(b.identity(proj), scope + "/attn/output");
                Value afterAttn = named(b.add(h, attnOut), scope + "/residual_attn");

                b.setScope(scope + "/ln_2");
                Value ln2 = b.layerNorm(afterAttn, param("h." + i + ".ln_2.weight"),
                        param("h." + i + ".ln_2.bias"), (float) c.layerNormEpsilon());
                b.setScope(scope + "/mlp/c_fc");
                Value fc = linear(path + ".mlp.c_fc", i, ln2, e, c.nInner());
                b.setScope(scope + "/mlp/act");
                Value act = activation(fc);
                b.setScope(scope + "/mlp/c_proj");
                Value down = linear(path + ".mlp.c_proj", i, act, c.nInner(), e);
                b.setScope(scope);
                Value mlpOut = named(b.identity(down), scope + "/mlp/output");
                Value afterMlp = named(b.add(afterAttn, mlpOut), scope + "/residual_mlp");
                layerValues.add(new Value[] {key, value, layerBias, attnOut, mlpOut, afterAttn, afterMlp});
                h = afterMlp;
            }

            b.setScope("/transformer/ln_f");
            Value lnF = b.layerNorm(h, param("ln_f.weight"), param("ln_f.bias"), (float) c.layerNormEpsilon());
            b.setScope("/lm_head");
            // Rows times wteᵀ as one Gemm with transB, against wte as stored: a Transpose of the weight would be
            // constant-folded by ONNX Runtime into a second resident copy of the embedding (154 MB at GPT-2 small).
            Value rows = b.gemm(b.flatten(lnF, 2), param("wte.weight"), null, 1f, 1f, false, true);
            Value logits = b.reshape(rows, b.concat(List.of(b.shape(ids), b.ints(c.vocabSize())), 0));
            logits.setType(TensorType.symbolic(dt, "batch", "sequence", c.vocabSize()));
            b.output(logits, LOGITS);
            b.setScope("");

            Model model = new Model(g, o.opset());
            model.setDocString("GPT-2 language model (Hugging Face GPT2LMHeadModel semantics)");
            model.metadata().put(CONFIG_METADATA, c.toJson());
            return new Gpt2Graph(model, anatomy(mask), o, c);
        }

        private Value splitHeads(Value x, long heads, long hd) {
            return b.transpose(b.reshape(x, 0, 0, heads, hd), 0, 2, 1, 3);
        }

        private Value attentionBias(Value mask, Value queryPos, Value keyPos) {
            b.setScope("/transformer/attention_bias");
            Value bias = CausalAttention.bias(b, mask, queryPos, keyPos, dt);
            b.setScope("/transformer");
            return named(b.identity(bias), "/transformer/attention_bias");
        }

        private Value activation(Value x) {
            return switch (c.activationFunction()) {
                case "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> b.gelu(x, "tanh");
                case "gelu" -> b.gelu(x, "none");
                case "relu" -> b.relu(x);
                default -> throw new IllegalStateException(c.activationFunction());
            };
        }

        private ModelAnatomy anatomy(Value mask) {
            List<LayerAnatomy> layers = new ArrayList<>();
            for (int i = 0; i < layerValues.size(); i++) {
                Value[] v = layerValues.get(i);
                layers.add(new LayerAnatomy(i, v[0].name(), v[1].name(), v[2].name(), v[3].name(), v[4].name(),
                        v[5].name(), v[6].name()));
            }
            List<LinearModule> mods = new ArrayList<>();
            for (Object[] l : linears) {
                String path = (String) l[0];
                mods.add(new LinearModule(path, path + ".weight", path + ".bias", ((Value) l[1]).name(),
                        ((Value) l[2]).name(), (Long) l[3], (Long) l[4], (Integer) l[5], true));
            }
            return new ModelAnatomy(layers, mods, c.nEmbd(), c.nHead(), c.headDim(), INPUT_IDS,
                    mask == null ? null : mask.name(), POSITIONS_VALUE, LOGITS, c.nHead(), DEFAULT_TARGET_MODULES);
        }
    }
}
