package dev.pet.llama;

import dev.pet.hf.testing.TorchStyleGraph;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds Llama-family graphs the way {@code torch.onnx.export} lays out Hugging Face {@code LlamaForCausalLM}:
 * node names scoped by module ({@code /model/layers.0/self_attn/q_proj/MatMul}), nn.Linear as MatMul with the
 * constant-folded transposed weight under an anonymous name ({@code onnx::MatMul_N}) or as MatMul of a Transpose of
 * the named [out, in] weight, RMSNorm as Pow/ReduceMean/Add/Sqrt/Div, RoPE angles computed in-graph from a Range of
 * positions ({@code inv_freq @ position_ids}, Cos, Sin, rotate_half with Slice/Neg/Concat), {@code repeat_kv} as
 * Unsqueeze/Expand/Reshape, SiLU as {@code x·sigmoid(x)}, a Trilu causal mask, and optionally Optimum's with-past
 * inputs and present outputs.
 */
public final class TorchStyleLlama extends TorchStyleGraph {
    /**
     * @param opset            default-domain opset
     * @param anonymousWeights weights constant-folded to [in, out] under {@code onnx::MatMul_N} names; else the
     *                         named [out, in] weight through a Transpose
     * @param withPast         past_key_values inputs and present outputs
     * @param positionIds      positions are the graph input {@code position_ids} [batch, sequence] (Optimum's export)
     *                         instead of a Range from the past length
     */
    public record Style(int opset, boolean anonymousWeights, boolean withPast, boolean positionIds) {
        public Style(int opset, boolean anonymousWeights, boolean withPast) {
            this(opset, anonymousWeights, withPast, false);
        }
    }

    private final LlamaConfig c;
    private final LlamaWeights w;
    private final Style s;
    private int anon = 300;

    private TorchStyleLlama(LlamaWeights weights, Style style) {
        super("main_graph", style.opset(), weights::get);
        this.w = weights;
        this.c = weights.config();
        this.s = style;
    }

    public static Model build(LlamaWeights weights, Style style) {
        return new TorchStyleLlama(weights, style).build();
    }

    Model build() {
        long e = c.hiddenSize();
        long heads = c.numAttentionHeads();
        long kvHeads = c.numKeyValueHeads();
        long hd = c.headDim();
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch_size", "sequence_length"));
        Value mask = b.input("attention_mask", TensorType.symbolic(DataType.INT64, "batch_size",
                "total_sequence_length"));
        List<Value> past = new ArrayList<>();
        if (s.withPast()) {
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                for (String kind : List.of("key", "value")) {
                    past.add(b.input("past_key_values." + i + "." + kind, TensorType.symbolic(DataType.FLOAT,
                            "batch_size", kvHeads, "past_sequence_length", hd)));
                }
            }
        }
        b.setScope("/model");
        Value seq = dim(ids, 1);
        Value pastLen = s.withPast() ? dim(past.get(0), 2) : k(Tensor.scalar(0L));
        Value total = b.add(pastLen, seq);
        Value positions = s.positionIds()
                ? b.input("position_ids", TensorType.symbolic(DataType.INT64, "batch_size", "sequence_length"))
                : b.op("Unsqueeze", List.of(b.range(pastLen, total, k(Tensor.scalar(1L))), ks(0)));
        b.setScope("/model/embed_tokens");
        Value h = b.gather(param("model.embed_tokens.weight"), ids, 0);

        // Causal mask [1, 1, S, P+S] from Trilu, plus padding [B, 1, 1, P+S]; finite minimum, clamped.
        b.setScope("/model");
        float min = -Float.MAX_VALUE;
        Value square = b.concat(List.of(unsq(seq), unsq(total)), 0);
        Value full = b.constantOfShape(square, Tensor.ofFloats(new float[] {min}, 1));
        Value causal = b.op("Unsqueeze", List.of(b.trilu(full, b.add(pastLen, k(Tensor.scalar(1L))), true),
                ks(0, 1)));
        Value padding = b.mul(b.sub(k(1.0f), b.cast(b.op("Unsqueeze", List.of(mask, ks(1, 2))), DataType.FLOAT)),
                k(min));
        Value modelMask = b.max(b.add(causal, padding), k(min));

        // RoPE: inv_freq [1, D/2, 1] @ positions [1, 1, S] -> [1, S, D/2], cat, cos/sin -> [1, 1, S, D].
        b.setScope("/model/rotary_emb");
        float[] inv = c.ropeScaling().inverseFrequencies(c.ropeTheta(), (int) hd);
        Value invFreq = b.op("Unsqueeze", List.of(k(Tensor.ofFloats(inv, inv.length)), ks(0, 2)));
        Value posF = b.cast(b.op("Unsqueeze", List.of(positions, ks(1))), DataType.FLOAT);
        Value freqs = b.transpose(b.matMul(invFreq, posF), 0, 2, 1);
        Value emb = b.concat(List.of(freqs, freqs), -1);
        Value cos = b.op("Unsqueeze", List.of(b.op("Cos", List.of(emb)), ks(1)));
        Value sin = b.op("Unsqueeze", List.of(b.op("Sin", List.of(emb)), ks(1)));

        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String sc = "/model/layers." + i;
            String p = "model.layers." + i + ".";
            b.setScope(sc + "/input_layernorm");
            Value x = rmsNorm(h, p + "input_layernorm.weight");
            Value q = linear(x, p + "self_attn.q_proj", sc + "/self_attn/q_proj", c.attentionBias());
            Value key = linear(x, p + "self_attn.k_proj", sc + "/self_attn/k_proj", c.attentionBias());
            Value val = linear(x, p + "self_attn.v_proj", sc + "/self_attn/v_proj", c.attentionBias());
            b.setScope(sc + "/self_attn");
            q = rope(heads(q, heads, hd), cos, sin, hd);
            key = rope(heads(key, kvHeads, hd), cos, sin, hd);
            val = heads(val, kvHeads, hd);
            if (s.withPast()) {
                key = b.concat(List.of(past.get(2 * i), key), 2);
                val = b.concat(List.of(past.get(2 * i + 1), val), 2);
            }
            if (s.withPast() || s.positionIds()) {
                // Optimum's decoders (with and without past) output the cache.
                key = b.identity(key);
                val = b.identity(val);
                b.output(key, "present." + i + ".key");
                b.output(val, "present." + i + ".value");
            }
            key = repeatKv(key, heads / kvHeads, hd);
            val = repeatKv(val, heads / kvHeads, hd);
            Value scores = b.div(b.matMul(q, b.transpose(key, 0, 1, 3, 2)), k((float) Math.sqrt(hd)));
            Value probs = b.softmax(b.add(scores, modelMask), -1);
            Value ctx = b.transpose(b.matMul(probs, val), 0, 2, 1, 3);
            Value merged = b.reshape(ctx, b.concat(List.of(unsq(dim(ctx, 0)), unsq(dim(ctx, 1)),
                    ks(heads * hd)), 0));
            Value attn = linear(merged, p + "self_attn.o_proj", sc + "/self_attn/o_proj", c.outputBias());
            b.setScope(sc);
            Value afterAttn = b.add(h, attn);
            b.setScope(sc + "/post_attention_layernorm");
            Value x2 = rmsNorm(afterAttn, p + "post_attention_layernorm.weight");
            Value gate = linear(x2, p + "mlp.gate_proj", sc + "/mlp/gate_proj", c.mlpBias());
            b.setScope(sc + "/mlp/act_fn");
            Value act = b.mul(gate, b.sigmoid(gate));
            Value up = linear(x2, p + "mlp.up_proj", sc + "/mlp/up_proj", c.mlpBias());
            b.setScope(sc + "/mlp");
            Value down = linear(b.mul(act, up), p + "mlp.down_proj", sc + "/mlp/down_proj", c.mlpBias());
            b.setScope(sc);
            h = b.add(afterAttn, down);
        }
        b.setScope("/model/norm");
        Value normed = rmsNorm(h, "model.norm.weight");
        String head = c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
        b.setScope("/lm_head");
        Value headW = b.initializer("onnx::MatMul_" + (anon++), transpose(w.get(head)));
        b.output(b.matMul(normed, headW), "logits");
        return new Model(g, s.opset());
    }

    /**
     * Optimum's {@code decoder_model_merged.onnx}: an If on the boolean input {@code use_cache_branch} whose
     * then-branch is the with-past decoder and else-branch the decoder without past (both with the
     * {@code position_ids} input and present outputs); the branches read the graph inputs and the weights they share
     * from the outer graph, where every initializer is kept once.
     */
    public static Model merged(LlamaWeights weights, int opset) {
        Model withPast = build(weights, new Style(opset, true, true, true));
        Model noPast = build(weights, new Style(opset, true, false, true));
        Graph outer = new Graph("merged_decoder");
        for (Value in : withPast.graph().inputs()) {
            outer.addInput(in.name(), in.type());
        }
        outer.addInput("use_cache_branch", TensorType.of(DataType.BOOL, 1));
        for (Graph branch : List.of(withPast.graph(), noPast.graph())) {
            for (String name : List.copyOf(branch.initializers().keySet())) {
                Tensor t = branch.initializer(name);
                Tensor kept = outer.initializer(name);
                String as = name;
                if (kept != null && !(java.util.Arrays.equals(kept.shape(), t.shape())
                        && java.util.Arrays.equals(kept.toDoubleArray(), t.toDoubleArray()))) {
                    // A builder constant named alike in both branches but with other data: kept apart.
                    as = outer.uniqueName(name);
                    branch.removeInitializer(name);
                    branch.value(name).rename(as);
                    branch.setInitializer(as, t);
                }
                outer.setInitializer(as, branch.removeInitializer(as));
            }
            for (Value in : List.copyOf(branch.inputs())) {
                branch.removeInput(in);
            }
        }
        List<String> outs = withPast.graph().outputs().stream().map(Value::name).toList();
        dev.pet.onnx.ir.Node ifNode = outer.addNode("If", "", "optimum::if", List.of(outer.value(
                "use_cache_branch")), outs, List.of(dev.pet.onnx.io.Subgraphs.attribute("then_branch",
                withPast.graph()), dev.pet.onnx.io.Subgraphs.attribute("else_branch", noPast.graph())));
        for (int i = 0; i < outs.size(); i++) {
            ifNode.output(i).setType(withPast.graph().outputs().get(i).type());
            outer.addOutput(ifNode.output(i));
        }
        return new Model(outer, opset);
    }

    private Value rmsNorm(Value x, String weight) {
        Value variance = b.reduceMean(b.pow(x, k(2.0f)), new long[] {-1}, true);
        Value norm = b.div(x, b.sqrt(b.add(variance, k((float) c.rmsNormEps()))));
        return b.mul(param(weight), norm);
    }

    private Value linear(Value x, String path, String scope, boolean bias) {
        b.setScope(scope);
        Tensor weight = w.get(path + ".weight");
        Value wv = s.anonymousWeights() ? b.initializer("onnx::MatMul_" + (anon++), transpose(weight))
                : b.transpose(param(path + ".weight"), 1, 0);
        Value y = b.matMul(x, wv);
        return bias ? b.add(param(path + ".bias"), y) : y;
    }

    /** [B, S, n·d] -> [B, n, S, d]. */
    private Value heads(Value x, long n, long d) {
        Value shape = b.concat(List.of(unsq(dim(x, 0)), unsq(dim(x, 1)), ks(n), ks(d)), 0);
        return b.transpose(b.reshape(x, shape), 0, 2, 1, 3);
    }

    /** x·cos + rotate_half(x)·sin, rotate_half by Slice as torch exports {@code x[..., :d/2]}. */
    private Value rope(Value x, Value cos, Value sin, long hd) {
        Value x1 = b.slice(x, ks(0), ks(hd / 2), ks(-1), ks(1));
        Value x2 = b.slice(x, ks(hd / 2), ks(Long.MAX_VALUE), ks(-1), ks(1));
        Value rotated = b.concat(List.of(b.neg(x2), x1), -1);
        return b.add(b.mul(x, cos), b.mul(rotated, sin));
    }

    /** Hugging Face repeat_kv: [B, kvH, T, d] -> [B, kvH·n, T, d] via Unsqueeze, Expand, Reshape. */
    private Value repeatKv(Value x, long n, long d) {
        if (n == 1) {
            return x;
        }
        Value batch = unsq(dim(x, 0));
        Value kvh = unsq(dim(x, 1));
        Value t = unsq(dim(x, 2));
        Value expanded = b.expand(b.op("Unsqueeze", List.of(x, ks(2))), b.concat(List.of(batch, kvh, ks(n), t,
                ks(d)), 0));
        return b.reshape(expanded, b.concat(List.of(batch, b.mul(kvh, ks(n)), t, ks(d)), 0));
    }

    public static Tensor transpose(Tensor t) {
        long rows = t.dim(0);
        long cols = t.dim(1);
        float[] src = t.toFloatArray();
        float[] dst = new float[src.length];
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                dst[(int) (col * rows + r)] = src[(int) (r * cols + col)];
            }
        }
        return Tensor.ofFloats(dst, cols, rows);
    }
}
