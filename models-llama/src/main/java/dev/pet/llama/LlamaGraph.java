package dev.pet.llama;

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
 * The forward graph of a Llama-family model (Hugging Face {@code LlamaForCausalLM}, {@code MistralForCausalLM},
 * {@code Qwen2ForCausalLM} semantics) built with {@link GraphBuilder}: token embedding, pre-RMSNorm decoder layers
 * ({@code x·rsqrt(mean(x²)+eps)·w}), rotary position embeddings in the rotate-half convention, grouped-query
 * causal attention, SwiGLU MLPs ({@code down(silu(gate(x))·up(x))}), a final RMSNorm and an LM head tied to the
 * embedding or not.
 *
 * <p>Hidden states run as [batch·sequence, hidden] so every projection is one Gemm against the [out, in] weight as
 * Hugging Face stores it (no transposed copy of any weight). Grouped-query attention reshapes the queries to
 * [batch, kvHeads, group, sequence, headDim] and multiplies them with the unrepeated keys and values, which gives
 * exactly {@code repeat_kv}'s result without materialising repeated keys. Keys are cached after RoPE, as in
 * Hugging Face. Inputs and outputs carry the Optimum names of {@link CausalLmNames}; the key/value cache is
 * [batch, kvHeads, past, headDim].
 *
 * <p>The anatomy's values have exactly the consumers a PET method should redirect (Identity copies): the keys,
 * values and attention bias of each layer, the attention and MLP outputs before their residual adds, and the
 * positions that drive RoPE.
 *
 * @param model   the ONNX model
 * @param anatomy where PET methods attach
 * @param options the inputs and outputs it was built with
 * @param config  the model configuration
 */
public record LlamaGraph(Model model, ModelAnatomy anatomy, CausalLmGraphOptions options, LlamaConfig config) {
    /** LoRA's default {@code target_modules} for Llama-family models, as in PEFT's per-model-type table. */
    public static final List<String> DEFAULT_TARGET_MODULES = List.of("q_proj", "v_proj");
    /** Model metadata key holding the config as {@code config.json} text. */
    public static final String CONFIG_METADATA = "llama.config";

    public LlamaGraph {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(anatomy, "anatomy");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(config, "config");
    }

    /** Builds the graph for these weights. */
    public static LlamaGraph build(LlamaWeights weights, CausalLmGraphOptions options) {
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(options, "options");
        return new Builder(weights, options).build();
    }

    private static final class Builder {
        private final LlamaWeights weights;
        private final CausalLmGraphOptions o;
        private final LlamaConfig c;
        private final DataType dt;
        private final Graph g = new Graph("llama");
        private final GraphBuilder b;
        private final List<LayerAnatomy> layers = new ArrayList<>();
        private final List<LinearModule> linears = new ArrayList<>();

        Builder(LlamaWeights weights, CausalLmGraphOptions options) {
            this.weights = weights;
            this.o = options;
            this.c = weights.config();
            this.dt = options.dataType();
            this.b = new GraphBuilder(g, options.opset());
        }

        private Value param(String name) {
            Value existing = g.value(name);
            if (existing != null) {
                return existing;
            }
            Tensor t = weights.get(name);
            return b.initializer(name, t.dataType() == dt ? t : t.castTo(dt));
        }

        private Value named(Value v, String name) {
            v.rename(g.uniqueName(name));
            return v;
        }

        /** {@code x·Wᵀ + bias} on [rows, in] as one Gemm; registered for the anatomy. */
        private Value linear(String path, int layer, Value x, long in, long out, boolean bias) {
            b.setScope("/" + path.replace('.', '/'));
            Value y = b.gemm(x, param(path + ".weight"), bias ? param(path + ".bias") : null, 1f, 1f, false, true);
            linears.add(new LinearModule(path, path + ".weight", bias ? path + ".bias" : null, x.name(), y.name(),
                    in, out, layer, false));
            return y;
        }

        private Value rmsNorm(Value x, String weight) {
            // mean(x²) as Σx² / n: one op without a squared copy of x, whose gradient 2x·g needs no expanded copy
            Value variance = b.div(b.reduceSumSquare(x, new long[] {-1}, true), b.constant(dt, c.hiddenSize()));
            Value inv = b.reciprocal(b.sqrt(b.add(variance, b.constant(dt, c.rmsNormEps()))));
            return b.mul(b.mul(x, inv), param(weight));
        }

        LlamaGraph build() {
            long e = c.hiddenSize();
            long heads = c.numAttentionHeads();
            long kvHeads = c.numKeyValueHeads();
            long hd = c.headDim();
            long group = c.groupSize();
            boolean past = o.kvCache() == CausalLmGraphOptions.KvCache.PAST_AND_PRESENT;
            Value ids = b.input(CausalLmNames.INPUT_IDS, TensorType.symbolic(DataType.INT64, "batch", "sequence"));
            // Without a past the mask covers exactly the new tokens: naming its length "sequence" lets the attention
            // bias, scores and their gradients keep one known shape (no broadcast decided at run time).
            Value mask = o.attentionMask() ? b.input(CausalLmNames.ATTENTION_MASK,
                    TensorType.symbolic(DataType.INT64, "batch", past ? "total_sequence" : "sequence")) : null;
            Value positionInput = o.positionIds() ? b.input(CausalLmNames.POSITION_IDS,
                    TensorType.symbolic(DataType.INT64, "batch", "sequence")) : null;
            List<Value> pastKeys = new ArrayList<>();
            List<Value> pastValues = new ArrayList<>();
            if (past) {
                TensorType kv = TensorType.symbolic(dt, "batch", kvHeads, "past_sequence", hd);
                for (int i = 0; i < c.numHiddenLayers(); i++) {
                    pastKeys.add(b.input(CausalLmNames.pastKey(i), kv));
                    pastValues.add(b.input(CausalLmNames.pastValue(i), kv));
                }
            }

            b.setScope("/model");
            Value one = b.scalarInt(1);
            Value idsShape = b.shape(ids);
            Value seqLen = b.gather(idsShape, one, 0);
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
            Value positions = named(b.identity(positionInput != null ? positionInput : b.unsqueeze(queryPos, 0)),
                    "/model/rotary_emb/position_ids");

            // cos/sin [batch or 1, sequence, 1, headDim] of the rotate-half convention: angles repeat over halves.
            b.setScope("/model/rotary_emb");
            float[] inv = c.ropeScaling().inverseFrequencies(c.ropeTheta(), (int) hd);
            Value invFreq = b.constant(dt == DataType.FLOAT ? Tensor.ofFloats(inv, inv.length)
                    : Tensor.ofFloats(inv, inv.length).castTo(dt));
            Value angles = b.mul(b.unsqueeze(b.cast(positions, dt), -1), invFreq);
            Value both = b.concat(List.of(angles, angles), -1);
            Value cos = b.unsqueeze(b.op("Cos", List.of(both)), 2);
            // rotate_half(x)·sin = swap_halves(x)·[-sin, sin]: the sign lives in the table, not in a Neg pass over
            // every query and key (and another over their gradients).
            float[] signs = new float[(int) hd];
            for (int j = 0; j < hd; j++) {
                signs[j] = j < hd / 2 ? -1f : 1f;
            }
            Value sin = b.mul(b.unsqueeze(b.op("Sin", List.of(both)), 2),
                    b.constant(Tensor.ofFloats(signs, signs.length).castTo(dt)));
            // The queries' 1/√headDim folded into their own tables: no pass over the queries scales them.
            double scale = 1.0 / Math.sqrt(hd);
            Value qCos = b.mul(cos, b.constant(dt, scale));
            Value qSin = b.mul(sin, b.constant(dt, scale));

            b.setScope("/model/attention_bias");
            Value bias = named(b.identity(CausalAttention.bias(b, mask, queryPos, keyPos, dt)),
                    "/model/attention_bias");

            b.setScope("/model/embed_tokens");
            Value h = b.reshape(b.gather(param("model.embed_tokens.weight"), ids, 0), -1, e);
            Value qShape = b.concat(List.of(idsShape, b.ints(heads, hd)), 0);
            Value kvShape = b.concat(List.of(idsShape, b.ints(kvHeads, hd)), 0);

            for (int i = 0; i < c.numHiddenLayers(); i++) {
                String path = "model.layers." + i;
                String scope = "/model/layers." + i;
                b.setScope(scope + "/input_layernorm");
                Value x = rmsNorm(h, path + ".input_layernorm.weight");
                Value q = linear(path + ".self_attn.q_proj", i, x, e, heads * hd, c.attentionBias());
                Value k = linear(path + ".self_attn.k_proj", i, x, e, kvHeads * hd, c.attentionBias());
                Value v = linear(path + ".self_attn.v_proj", i, x, e, kvHeads * hd, c.attentionBias());
                b.setScope(scope + "/self_attn");
                q = b.transpose(rope(heads4(q, qShape, heads, hd), qCos, qSin, hd), 0, 2, 1, 3);
                k = b.transpose(rope(heads4(k, kvShape, kvHeads, hd), cos, sin, hd), 0, 2, 1, 3);
                v = b.transpose(heads4(v, kvShape, kvHeads, hd), 0, 2, 1, 3);
                if (past) {
                    k = b.concat(List.of(pastKeys.get(i), k), 2);
                    v = b.concat(List.of(pastValues.get(i), v), 2);
                }
                if (o.kvCache() != CausalLmGraphOptions.KvCache.NONE) {
                    b.output(k, CausalLmNames.presentKey(i));
                    b.output(v, CausalLmNames.presentValue(i));
                }
                Value key = named(b.identity(k), scope + "/self_attn/key");
                Value value = named(b.identity(v), scope + "/self_attn/value");
                Value layerBias = named(b.identity(bias), scope + "/self_attn/attention_bias");
                Value qs = q; // already scaled by 1/√headDim through qCos, qSin
                Value keyT = b.transpose(key, 0, 1, 3, 2);
                Value context;
                if (group == 1) {
                    Value probs = b.softmax(b.add(b.matMul(qs, keyT), layerBias), -1);
                    context = b.matMul(probs, value);
                } else {
                    // [B, H, S, d] -> [B, kvH, group, S, d]: query head h reads key/value head h / group.
                    Value q5 = b.reshape(qs, 0, kvHeads, group, -1, hd);
                    Value scores = b.matMul(q5, b.unsqueeze(keyT, 2));
                    Value probs = b.softmax(b.add(scores, b.unsqueeze(layerBias, 1)), -1);
                    context = b.reshape(b.matMul(probs, b.unsqueeze(value, 2)), 0, heads, -1, hd);
                }
                Value merged = b.reshape(b.transpose(context, 0, 2, 1, 3), -1, heads * hd);
                Value proj = linear(path + ".self_attn.o_proj", i, merged, heads * hd, e, c.outputBias());
                b.setScope(scope);
                Value attnOut = named(b.identity(proj), scope + "/self_attn/output");
                Value afterAttn = named(b.add(h, attnOut), scope + "/residual_attn");

                b.setScope(scope + "/post_attention_layernorm");
                Value x2 = rmsNorm(afterAttn, path + ".post_attention_layernorm.weight");
                long inner = c.intermediateSize();
                Value gate = linear(path + ".mlp.gate_proj", i, x2, e, inner, c.mlpBias());
                Value up = linear(path + ".mlp.up_proj", i, x2, e, inner, c.mlpBias());
                b.setScope(scope + "/mlp/act_fn");
                Value act = b.mul(b.mul(gate, b.sigmoid(gate)), up);
                Value down = linear(path + ".mlp.down_proj", i, act, inner, e, c.mlpBias());
                b.setScope(scope);
                Value mlpOut = named(b.identity(down), scope + "/mlp/output");
                Value afterMlp = named(b.add(afterAttn, mlpOut), scope + "/residual_mlp");
                layers.add(new LayerAnatomy(i, key.name(), value.name(), layerBias.name(), attnOut.name(),
                        mlpOut.name(), afterAttn.name(), afterMlp.name()));
                h = afterMlp;
            }

            b.setScope("/model/norm");
            Value normed = rmsNorm(h, "model.norm.weight");
            b.setScope("/lm_head");
            String head = c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
            Value logits2d = b.gemm(normed, param(head), null, 1f, 1f, false, true);
            Value logits = b.reshape(logits2d, b.concat(List.of(idsShape, b.ints(c.vocabSize())), 0));
            logits.setType(TensorType.symbolic(dt, "batch", "sequence", c.vocabSize()));
            b.output(logits, CausalLmNames.LOGITS);
            b.setScope("");

            Model model = new Model(g, o.opset());
            model.setDocString("Llama-family language model (Hugging Face " + c.architecture() + " semantics)");
            model.metadata().put(CONFIG_METADATA, c.toJson());
            ModelAnatomy anatomy = new ModelAnatomy(layers, linears, e, heads, hd, CausalLmNames.INPUT_IDS,
                    mask == null ? null : mask.name(), positions.name(), CausalLmNames.LOGITS, kvHeads,
                    DEFAULT_TARGET_MODULES);
            return new LlamaGraph(model, anatomy, o, c);
        }

        /** [rows, n·d] -> [batch, sequence, n, d]. */
        private Value heads4(Value x, Value shape, long n, long d) {
            Value y = b.reshape(x, shape);
            y.setType(TensorType.symbolic(dt, "batch", "sequence", n, d));
            return y;
        }

        /**
         * x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1] for the halves x1, x2 of the last axis, written
         * as x·cos + [x2, x1]·sinSigned where {@code sinSigned} = [-sin, sin] over the halves.
         */
        private Value rope(Value x, Value cos, Value sinSigned, long hd) {
            List<Value> halves = b.split(x, -1, hd / 2, hd / 2);
            Value swapped = b.concat(List.of(halves.get(1), halves.get(0)), -1);
            return b.add(b.mul(x, cos), b.mul(swapped, sinSigned));
        }
    }
}
