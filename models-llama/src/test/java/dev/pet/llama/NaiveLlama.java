package dev.pet.llama;

import dev.pet.api.testkit.PeftPrefixReference;
import dev.pet.onnx.tensor.Tensor;
import java.util.HashMap;
import java.util.Map;

/**
 * An independent float64 Llama/Mistral/Qwen2 forward pass written from Hugging Face's modeling code, loop by loop:
 * RMSNorm, RoPE (rotate-half, with its own frequency formulas), grouped-query attention through {@code repeat_kv}'s
 * head mapping, SwiGLU, tied or untied head. The graph tests compare against it. As a {@link PeftPrefixReference}
 * it runs a PEFT prefix as Hugging Face's {@code LlamaModel} runs {@code past_key_values}: prefix keys and values
 * per key/value head used as they are (the cache holds keys after RoPE, so a prefix key gets no rotation), real
 * tokens rotated at positions P..P+T-1 (the cache length onwards), the prefix visible to every query.
 */
public final class NaiveLlama implements PeftPrefixReference {
    private final LlamaConfig c;
    private final Map<String, double[]> w = new HashMap<>();
    private final double[] invFreq;

    public NaiveLlama(LlamaWeights weights) {
        this.c = weights.config();
        for (Map.Entry<String, Tensor> e : weights.tensors().entrySet()) {
            w.put(e.getKey(), e.getValue().toDoubleArray());
        }
        invFreq = inverseFrequencies(c);
    }

    /** Hugging Face's _compute_default/linear/llama3_rope_parameters, in double. */
    static double[] inverseFrequencies(LlamaConfig c) {
        int d = c.headDim();
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(c.ropeTheta(), 2.0 * i / d);
        }
        RopeScaling s = c.ropeScaling();
        if (s.type().equals("linear")) {
            for (int i = 0; i < inv.length; i++) {
                inv[i] /= s.factor();
            }
        } else if (s.type().equals("llama3")) {
            double old = s.originalMaxPositionEmbeddings();
            for (int i = 0; i < inv.length; i++) {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen < old / s.highFreqFactor()) {
                    continue; // high frequency: unchanged
                }
                if (wavelen > old / s.lowFreqFactor()) {
                    inv[i] /= s.factor();
                } else {
                    double smooth = (old / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                    inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    /** Logits [sequence][vocab] of one row; {@code mask} null means all ones. */
    double[][] forward(long[] ids, long[] mask) {
        return logits(new float[0], 0, ids, mask, 0);
    }

    @Override
    public double[][] logits(float[] table, int np, long[] ids, long[] mask, int firstPosition) {
        int seq = ids.length;
        int e = c.hiddenSize();
        int heads = c.numAttentionHeads();
        int kvHeads = c.numKeyValueHeads();
        int d = c.headDim();
        double[][] h = new double[seq][];
        double[] emb = w.get("model.embed_tokens.weight");
        for (int s = 0; s < seq; s++) {
            h[s] = new double[e];
            System.arraycopy(emb, (int) ids[s] * e, h[s], 0, e);
        }
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] q = new double[seq][];
            double[][] k = new double[seq][];
            double[][] v = new double[seq][];
            for (int s = 0; s < seq; s++) {
                double[] x = rms(h[s], w.get(p + "input_layernorm.weight"));
                q[s] = rope(linear(p + "self_attn.q_proj", x), heads, d, firstPosition + s);
                k[s] = rope(linear(p + "self_attn.k_proj", x), kvHeads, d, firstPosition + s);
                v[s] = linear(p + "self_attn.v_proj", x);
            }
            double[][] next = new double[seq][];
            for (int s = 0; s < seq; s++) {
                double[] ctx = new double[heads * d];
                for (int hh = 0; hh < heads; hh++) {
                    int kv = hh / (heads / kvHeads);
                    // keys: the P prefix keys (always visible), then real keys 0..s (causal, masked)
                    double[] scores = new double[np + s + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = 0; t < scores.length; t++) {
                        if (t >= np && mask != null && mask[t - np] == 0) {
                            scores[t] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int j = 0; j < d; j++) {
                            double key = t < np ? PeftPrefixReference.prefix(table, np, t, 2 * l, kv, j, kvHeads, d)
                                    : k[t - np][kv * d + j];
                            dot += q[s][hh * d + j] * key;
                        }
                        scores[t] = dot / Math.sqrt(d);
                        max = Math.max(max, scores[t]);
                    }
                    if (max == Double.NEGATIVE_INFINITY) {
                        continue; // a padded query with no visible key: its output is never compared
                    }
                    double sum = 0;
                    for (int t = 0; t < scores.length; t++) {
                        scores[t] = Math.exp(scores[t] - max);
                        sum += scores[t];
                    }
                    for (int t = 0; t < scores.length; t++) {
                        if (scores[t] == 0) {
                            continue; // masked key (its values may come from an uncompared padded row)
                        }
                        for (int j = 0; j < d; j++) {
                            double value = t < np
                                    ? PeftPrefixReference.prefix(table, np, t, 2 * l + 1, kv, j, kvHeads, d)
                                    : v[t - np][kv * d + j];
                            ctx[hh * d + j] += scores[t] / sum * value;
                        }
                    }
                }
                double[] attn = linear(p + "self_attn.o_proj", ctx);
                double[] r = new double[e];
                for (int i = 0; i < e; i++) {
                    r[i] = h[s][i] + attn[i];
                }
                double[] x = rms(r, w.get(p + "post_attention_layernorm.weight"));
                double[] gate = linear(p + "mlp.gate_proj", x);
                double[] up = linear(p + "mlp.up_proj", x);
                for (int i = 0; i < gate.length; i++) {
                    gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
                }
                double[] down = linear(p + "mlp.down_proj", gate);
                for (int i = 0; i < e; i++) {
                    r[i] += down[i];
                }
                next[s] = r;
            }
            h = next;
        }
        String head = c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
        double[][] logits = new double[seq][];
        for (int s = 0; s < seq; s++) {
            logits[s] = matVec(w.get(head), rms(h[s], w.get("model.norm.weight")), c.vocabSize(), e);
        }
        return logits;
    }

    private double[] rms(double[] x, double[] weight) {
        double ms = 0;
        for (double a : x) {
            ms += a * a;
        }
        double inv = 1 / Math.sqrt(ms / x.length + c.rmsNormEps());
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * inv * weight[i];
        }
        return out;
    }

    /** Rotate-half RoPE of every head of one position. */
    private double[] rope(double[] x, int heads, int d, int pos) {
        double[] out = new double[x.length];
        int half = d / 2;
        for (int hh = 0; hh < heads; hh++) {
            for (int j = 0; j < half; j++) {
                double angle = pos * invFreq[j];
                double x1 = x[hh * d + j];
                double x2 = x[hh * d + j + half];
                out[hh * d + j] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
                out[hh * d + j + half] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
            }
        }
        return out;
    }

    private double[] linear(String path, double[] x) {
        double[] weight = w.get(path + ".weight");
        int out = weight.length / x.length;
        double[] y = matVec(weight, x, out, x.length);
        double[] bias = w.get(path + ".bias");
        if (bias != null) {
            for (int i = 0; i < out; i++) {
                y[i] += bias[i];
            }
        }
        return y;
    }

    /** W [rows, cols] · x. */
    private static double[] matVec(double[] weight, double[] x, int rows, int cols) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int j = 0; j < cols; j++) {
                s += weight[r * cols + j] * x[j];
            }
            y[r] = s;
        }
        return y;
    }
}
