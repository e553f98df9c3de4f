package dev.pet.gpt2;

import dev.pet.api.testkit.PeftPrefixReference;

/**
 * An independent GPT-2 forward pass in double precision with plain loops, written from the Hugging Face
 * GPT2LMHeadModel definition: no ONNX, no shared code with the graph builder. Masked keys are left out of the
 * softmax; a query whose causal window holds no unmasked key gets a zero attention context (callers skip such
 * positions). As a {@link PeftPrefixReference} it runs a PEFT prefix as {@code GPT2Model} runs
 * {@code past_key_values}: the prefix keys and values visible to every query, the real tokens at learned positions
 * numbered from the cache length (P..P+T-1).
 */
public final class NaiveGpt2 implements PeftPrefixReference {
    private final Gpt2Config c;
    private final double[] wte;
    private final double[] wpe;
    private final double[][][] p;
    private final double[] lnfW;
    private final double[] lnfB;

    public NaiveGpt2(Gpt2Weights w) {
        this.c = w.config();
        wte = w.get("transformer.wte.weight").toDoubleArray();
        wpe = w.get("transformer.wpe.weight").toDoubleArray();
        String[] names = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
            "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
            "mlp.c_proj.bias"};
        p = new double[c.nLayer()][names.length][];
        for (int l = 0; l < c.nLayer(); l++) {
            for (int k = 0; k < names.length; k++) {
                p[l][k] = w.get("transformer.h." + l + "." + names[k]).toDoubleArray();
            }
        }
        lnfW = w.get("transformer.ln_f.weight").toDoubleArray();
        lnfB = w.get("transformer.ln_f.bias").toDoubleArray();
    }

    /** Logits [seq][vocab] of one row; {@code mask} null means all ones; positions are 0..seq-1. */
    double[][] logits(long[] ids, long[] mask) {
        return logits(new float[0], 0, ids, mask, 0);
    }

    @Override
    public double[][] logits(float[] table, int virtualTokens, long[] ids, long[] mask, int firstPosition) {
        int s = ids.length;
        int e = c.nEmbd();
        int heads = c.nHead();
        int hd = e / heads;
        int np = virtualTokens;
        double[][] h = new double[s][e];
        for (int t = 0; t < s; t++) {
            for (int j = 0; j < e; j++) {
                h[t][j] = wte[(int) ids[t] * e + j] + wpe[(firstPosition + t) * e + j];
            }
        }
        for (int l = 0; l < c.nLayer(); l++) {
            double[][] pl = p[l];
            double[][] qkv = new double[s][];
            for (int t = 0; t < s; t++) {
                qkv[t] = linear(layerNorm(h[t], pl[0], pl[1]), pl[2], pl[3], e, 3 * e);
            }
            double[][] ctx = new double[s][e];
            for (int hh = 0; hh < heads; hh++) {
                for (int t = 0; t < s; t++) {
                    // keys: P prefix keys, then real keys 0..t (causal, unmasked)
                    double[] score = new double[np + t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u < np + t + 1; u++) {
                        if (u >= np && mask != null && mask[u - np] == 0) {
                            score[u] = Double.NaN;
                            continue;
                        }
                        double dot = 0;
                        for (int d = 0; d < hd; d++) {
                            double k = u < np ? PeftPrefixReference.prefix(table, np, u, 2 * l, hh, d, heads, hd)
                                    : qkv[u - np][e + hh * hd + d];
                            dot += qkv[t][hh * hd + d] * k;
                        }
                        score[u] = dot / Math.sqrt(hd);
                        max = Math.max(max, score[u]);
                    }
                    double z = 0;
                    for (int u = 0; u < score.length; u++) {
                        if (!Double.isNaN(score[u])) {
                            score[u] = Math.exp(score[u] - max);
                            z += score[u];
                        }
                    }
                    for (int u = 0; u < score.length; u++) {
                        if (Double.isNaN(score[u])) {
                            continue;
                        }
                        double a = score[u] / z;
                        for (int d = 0; d < hd; d++) {
                            double v = u < np ? PeftPrefixReference.prefix(table, np, u, 2 * l + 1, hh, d, heads, hd)
                                    : qkv[u - np][2 * e + hh * hd + d];
                            ctx[t][hh * hd + d] += a * v;
                        }
                    }
                }
            }
            for (int t = 0; t < s; t++) {
                double[] attn = linear(ctx[t], pl[4], pl[5], e, e);
                for (int j = 0; j < e; j++) {
                    h[t][j] += attn[j];
                }
                double[] fc = linear(layerNorm(h[t], pl[6], pl[7]), pl[8], pl[9], e, c.nInner());
                for (int j = 0; j < fc.length; j++) {
                    double v = fc[j];
                    fc[j] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
                }
                double[] out = linear(fc, pl[10], pl[11], c.nInner(), e);
                for (int j = 0; j < e; j++) {
                    h[t][j] += out[j];
                }
            }
        }
        double[][] logits = new double[s][c.vocabSize()];
        for (int t = 0; t < s; t++) {
            double[] y = layerNorm(h[t], lnfW, lnfB);
            for (int v = 0; v < c.vocabSize(); v++) {
                double acc = 0;
                for (int j = 0; j < e; j++) {
                    acc += y[j] * wte[v * e + j];
                }
                logits[t][v] = acc;
            }
        }
        return logits;
    }

    private double[] layerNorm(double[] x, double[] w, double[] b) {
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double var = 0;
        for (double v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= x.length;
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (x[i] - mean) / Math.sqrt(var + c.layerNormEpsilon()) * w[i] + b[i];
        }
        return y;
    }

    /** Conv1D: weight [in, out]. */
    private static double[] linear(double[] x, double[] w, double[] b, int in, int out) {
        double[] y = b.clone();
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                y[o] += x[i] * w[i * out + o];
            }
        }
        return y;
    }
}
