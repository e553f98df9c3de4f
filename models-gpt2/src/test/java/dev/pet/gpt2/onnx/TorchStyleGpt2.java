package dev.pet.gpt2.onnx;

import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.hf.testing.TorchStyleGraph;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Builds GPT-2 graphs the way {@code torch.onnx.export} lays out Hugging Face {@code GPT2LMHeadModel}: node names
 * scoped by module ({@code /transformer/h.0/attn/c_attn/Gemm}), {@code Constant} nodes for scalars and shape pieces,
 * shape-computation subgraphs (Shape/Gather/Unsqueeze/Concat/Slice) for every reshape, Conv1D as
 * Reshape-Gemm-Reshape or MatMul + Add(bias, ·), decomposed or fused LayerNorm, decomposed {@code gelu_new}, the
 * causal mask as a sliced boolean buffer with {@code Where} (HF &lt; 4.36) or a model-level {@code Trilu} float mask
 * (HF &ge; 4.36), and anonymous {@code onnx::MatMul_N} weights when the exporter constant-folded a transpose.
 */
public final class TorchStyleGpt2 extends TorchStyleGraph {
    public enum Projection {
        /** Conv1D's addmm: Reshape to 2-D, Gemm(transB=0) with the [in, out] weight, Reshape back. */
        CONV1D_GEMM,
        /** nn.Linear on 2-D input: Gemm(transB=1) with an anonymous [out, in] weight. */
        LINEAR_GEMM,
        /** MatMul on 3-D input then Add(bias, ·). */
        MATMUL
    }

    public enum Mask {
        WHERE, TRILU,
        /** Padding only, no causal mask: bidirectional attention, as an encoder attends. */
        PADDING_ONLY,
        /** A Trilu one diagonal off: each query also sees the next token (what a wrong export would do). */
        LOOKAHEAD
    }

    /**
     * @param presentOutputs each block's keys and values are graph outputs {@code present.N.key/value}
     * @param withPast       Optimum's with-past decoder: {@code past_key_values.N.key/value} inputs concatenated in
     *                       front of the keys and values, positions and causal mask offset by the past length
     * @param positionIds    positions are the graph input {@code position_ids} [batch, sequence], as Optimum exports
     *                       them, instead of a Range from the past length
     */
    public record Style(int opset, Projection projection, boolean fusedLayerNorm, Mask mask, boolean anonymousWeights,
            boolean presentOutputs, boolean withPast, boolean positionIds) {
        public Style(int opset, Projection projection, boolean fusedLayerNorm, Mask mask, boolean anonymousWeights,
                boolean presentOutputs, boolean withPast) {
            this(opset, projection, fusedLayerNorm, mask, anonymousWeights, presentOutputs, withPast, false);
        }

        public Style(int opset, Projection projection, boolean fusedLayerNorm, Mask mask, boolean anonymousWeights,
                boolean presentOutputs) {
            this(opset, projection, fusedLayerNorm, mask, anonymousWeights, presentOutputs, false);
        }

        /** This style with positions as the graph input {@code position_ids} [batch, sequence] (Optimum's export). */
        public Style withPositionIds() {
            return new Style(opset, projection, fusedLayerNorm, mask, anonymousWeights, presentOutputs, withPast, true);
        }
    }

    private final Gpt2Config c;
    private final Gpt2Weights w;
    private final Style s;
    private int anon = 100;

    private TorchStyleGpt2(Gpt2Weights weights, Style style) {
        super("torch_jit", style.opset(), weights::get);
        this.w = weights;
        this.c = weights.config();
        this.s = style;
    }

    public static Model build(Gpt2Weights weights, Style style) {
        return new TorchStyleGpt2(weights, style).build();
    }

    /** Seeded weights where every parameter matters (non-zero biases, LayerNorm away from 1/0). */
    public static Gpt2Weights weights(Gpt2Config c, long seed) {
        Random r = new Random(seed);
        Map<String, Tensor> m = new LinkedHashMap<>();
        Gpt2Weights.expectedShapes(c).forEach((name, shape) -> {
            int n = Math.toIntExact(Tensor.checkedElementCount(shape));
            float[] v = new float[n];
            boolean lnScale = name.matches(".*ln_(1|2|f)\\.weight");
            double std = lnScale ? 0.2 : name.endsWith(".bias") ? 0.1 : name.contains("c_attn") ? 0.15 : 0.08;
            for (int i = 0; i < n; i++) {
                v[i] = (float) ((lnScale ? 1.0 : 0.0) + std * r.nextGaussian());
            }
            m.put(name, Tensor.ofFloats(v, shape));
        });
        return Gpt2Weights.of(c, m, "test weights");
    }

    Model build() {
        long e = c.nEmbd();
        Value ids = b.input("input_ids", TensorType.symbolic(DataType.INT64, "batch_size", "sequence_length"));
        Value mask = b.input("attention_mask", TensorType.symbolic(DataType.INT64, "batch_size", "sequence_length"));
        List<Value> past = new java.util.ArrayList<>();
        if (s.withPast()) {
            for (int i = 0; i < c.nLayer(); i++) {
                for (String kind : List.of("key", "value")) {
                    past.add(b.input("past_key_values." + i + "." + kind, TensorType.symbolic(DataType.FLOAT,
                            "batch_size", (long) c.nHead(), "past_sequence_length", (long) c.headDim())));
                }
            }
        }
        b.setScope("/transformer");
        Value seq = dim(ids, 1);
        Value pastLen = s.withPast() ? dim(past.get(0), 2) : k(Tensor.scalar(0L));
        Value pos = s.positionIds()
                ? b.input("position_ids", TensorType.symbolic(DataType.INT64, "batch_size", "sequence_length"))
                : b.op("Unsqueeze", List.of(b.range(pastLen, b.add(pastLen, seq), k(Tensor.scalar(1L))), ks(0)));
        b.setScope("/transformer/wte");
        Value tok = b.gather(param("transformer.wte.weight"), ids, 0);
        b.setScope("/transformer/wpe");
        Value pe = b.gather(param("transformer.wpe.weight"), pos, 0);
        b.setScope("/transformer");
        Value h = b.add(tok, pe);
        float min = -Float.MAX_VALUE;
        Value ext = b.op("Unsqueeze", List.of(mask, ks(1, 2)));
        Value padding = b.mul(b.sub(k(1.0f), b.cast(ext, DataType.FLOAT)), k(min));
        Value modelMask = padding;
        if (s.mask() == Mask.TRILU || s.mask() == Mask.LOOKAHEAD) {
            Value square = b.concat(List.of(unsq(seq), unsq(b.add(pastLen, seq))), 0);
            Value full = b.constantOfShape(square, Tensor.ofFloats(new float[] {min}, 1));
            Value upper = b.trilu(full, b.add(pastLen, k(Tensor.scalar(s.mask() == Mask.TRILU ? 1L : 2L))), true);
            Value causal = b.op("Unsqueeze", List.of(upper, ks(0, 1)));
            modelMask = b.add(causal, padding);
        }
        for (int i = 0; i < c.nLayer(); i++) {
            String sc = "/transformer/h." + i;
            String p = "transformer.h." + i + ".";
            b.setScope(sc + "/ln_1");
            Value ln1 = layerNorm(h, p + "ln_1");
            b.setScope(sc + "/attn/c_attn");
            Value qkv = projection(ln1, p + "attn.c_attn", e, 3 * e);
            b.setScope(sc + "/attn");
            List<Value> parts = b.node("Split", "", List.of(qkv, ks(e, e, e)), 3, Attribute.of("axis", 2L))
                    .outputs();
            Value q = heads(parts.get(0));
            Value key = heads(parts.get(1));
            Value val = heads(parts.get(2));
            if (s.withPast()) {
                key = b.concat(List.of(past.get(2 * i), key), 2);
                val = b.concat(List.of(past.get(2 * i + 1), val), 2);
            }
            if (s.presentOutputs() || s.withPast()) {
                b.output(key, "present." + i + ".key");
                b.output(val, "present." + i + ".value");
            }
            Value scores = b.matMul(q, b.transpose(key, 0, 1, 3, 2));
            scores = b.div(scores, k((float) Math.sqrt(c.headDim())));
            if (s.mask() == Mask.WHERE) {
                Value buffer = causalBuffer(p + "attn.bias");
                Value ql = dim(q, 2);
                Value kl = dim(key, 2);
                Value rows = b.slice(buffer, unsq(b.sub(kl, ql)), unsq(kl), ks(2), ks(1));
                Value causal = b.slice(rows, ks(0), unsq(kl), ks(3), ks(1));
                scores = b.where(causal, scores, k(min));
            }
            Value probs = b.softmax(b.add(scores, modelMask), -1);
            Value ctx = b.transpose(b.matMul(probs, val), 0, 2, 1, 3);
            Value merged = b.reshape(ctx, b.concat(List.of(unsq(dim(ctx, 0)), unsq(dim(ctx, 1)), ks(e)), 0));
            b.setScope(sc + "/attn/c_proj");
            Value attn = projection(merged, p + "attn.c_proj", e, e);
            b.setScope(sc);
            Value afterAttn = b.add(attn, h);
            b.setScope(sc + "/ln_2");
            Value ln2 = layerNorm(afterAttn, p + "ln_2");
            b.setScope(sc + "/mlp/c_fc");
            Value fc = projection(ln2, p + "mlp.c_fc", e, c.nInner());
            b.setScope(sc + "/mlp/act");
            Value act = geluNew(fc);
            b.setScope(sc + "/mlp/c_proj");
            Value down = projection(act, p + "mlp.c_proj", c.nInner(), e);
            b.setScope(sc);
            h = b.add(down, afterAttn);
        }
        b.setScope("/transformer/ln_f");
        Value lnF = layerNorm(h, "transformer.ln_f");
        b.setScope("/lm_head");
        Tensor wte = w.get("transformer.wte.weight");
        Value head = b.initializer("onnx::MatMul_" + (anon++), transpose(wte));
        b.output(b.matMul(lnF, head), "logits");
        return new Model(g, s.opset());
    }

    private Value causalBuffer(String name) {
        int n = c.nPositions();
        boolean[] tri = new boolean[n * n];
        for (int r = 0; r < n; r++) {
            for (int col = 0; col <= r; col++) {
                tri[r * n + col] = true;
            }
        }
        return b.initializer(name, Tensor.ofBools(tri, 1, 1, n, n));
    }

    private Value heads(Value x) {
        Value shape = b.concat(List.of(unsq(dim(x, 0)), unsq(dim(x, 1)), ks(c.nHead()), ks(c.headDim())), 0);
        return b.transpose(b.reshape(x, shape), 0, 2, 1, 3);
    }

    private Value layerNorm(Value x, String path) {
        Value gamma = param(path + ".weight");
        Value beta = param(path + ".bias");
        float eps = (float) c.layerNormEpsilon();
        if (s.fusedLayerNorm()) {
            return b.layerNorm(x, gamma, beta, eps);
        }
        Value mean = b.reduceMean(x, new long[] {-1}, true);
        Value d = b.sub(x, mean);
        Value var = b.reduceMean(b.pow(d, k(2.0f)), new long[] {-1}, true);
        Value norm = b.div(d, b.sqrt(b.add(var, k(eps))));
        return b.add(b.mul(norm, gamma), beta);
    }

    private Value geluNew(Value x) {
        Value half = b.mul(x, k(0.5f));
        Value cube = b.pow(x, k(3.0f));
        Value inner = b.mul(b.add(x, b.mul(cube, k(0.044715f))), k((float) Math.sqrt(2.0 / Math.PI)));
        return b.mul(half, b.add(b.tanh(inner), k(1.0f)));
    }

    private Value projection(Value x, String path, long in, long out) {
        Tensor weight = w.get(path + ".weight");
        Value bias = param(path + ".bias");
        switch (s.projection()) {
            case MATMUL -> {
                Value wv = b.initializer(s.anonymousWeights() ? "onnx::MatMul_" + (anon++) : path + ".weight",
                        weight);
                return b.add(bias, b.matMul(x, wv));
            }
            case CONV1D_GEMM, LINEAR_GEMM -> {
                boolean linear = s.projection() == Projection.LINEAR_GEMM;
                Value sizeOut = b.concat(List.of(b.slice(b.shape(x), ks(0), ks(-1), ks(0), ks(1)), ks(out)), 0);
                Value flat = b.reshape(x, ks(-1, in));
                String name = s.anonymousWeights() || linear ? "onnx::Gemm_" + (anon++) : path + ".weight";
                Value wv = b.initializer(name, linear ? transpose(weight) : weight);
                Value y = b.gemm(flat, wv, bias, 1f, 1f, false, linear);
                return b.reshape(y, sizeOut);
            }
            default -> throw new IllegalStateException();
        }
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
