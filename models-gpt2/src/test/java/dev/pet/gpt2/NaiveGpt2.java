package dev.pet.gpt2;

/**
 * An independent GPT-2 forward pass in double precision with plain loops, written from the Hugging Face
 * GPT2LMHeadModel definition: no ONNX, no shared code with the graph builder. Masked keys are left out of the
 * softmax; a query whose causal window holds no unmasked key yields NaN logits (callers skip such positions);
 * masked keys never enter the sums, so those NaNs do not spread.
 */
final class NaiveGpt2 {
    private final Gpt2Config c;
    private final double[] wte;
    private final double[] wpe;
    private final double[][][] p;
    private final double[] lnfW;
    private final double[] lnfB;

    NaiveGpt2(Gpt2Weights w) {
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
        int s = ids.length;
        int e = c.nEmbd();
        int heads = c.nHead();
        int hd = e / heads;
        double[][] h = new double[s][e];
        for (int t = 0; t < s; t++) {
            for (int j = 0; j < e; j++) {
                h[t][j] = wte[(int) ids[t] * e + j] + wpe[t * e + j];
            }
        }
        for (int l = 0; l < c.nLayer(); l++) {
            double[][] pl = p[l];
            double[][] x = new double[s][];
            for (int t = 0; t < s; t++) {
                x[t] = layerNorm(h[t], pl[0], pl[1]);
            }
            double[][] qkv = new double[s][];
            for (int t = 0; t < s; t++) {
                qkv[t] = linear(x[t], pl[2], pl[3], e, 3 * e);
            }
            double[][] ctx = new double[s][e];
            for (int hh = 0; hh < heads; hh++) {
                for (int t = 0; t < s; t++) {
                    double[] score = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        if (mask != null && mask[u] == 0) {
                            score[u] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int d = 0; d < hd; d++) {
                            dot += qkv[t][hh * hd + d] * qkv[u][e + hh * hd + d];
                        }
                        score[u] = dot / Math.sqrt(hd);
                        max = Math.max(max, score[u]);
                    }
                    double z = 0;
                    for (int u = 0; u <= t; u++) {
                        if (mask != null && mask[u] == 0) {
                            continue;
                        }
                        score[u] = Math.exp(score[u] - max);
                        z += score[u];
                    }
                    for (int u = 0; u <= t; u++) {
                        if (mask != null && mask[u] == 0) {
                            continue;
                        }
                        double a = score[u] / z;
                        for (int d = 0; d < hd; d++) {
                            ctx[t][hh * hd + d] += a * qkv[u][2 * e + hh * hd + d];
                        }
                    }
                }
            }
            for (int t = 0; t < s; t++) {
                double[] attn = linear(ctx[t], pl[4], pl[5], e, e);
                for (int j = 0; j < e; j++) {
                    h[t][j] += attn[j];
                }
                double[] y = layerNorm(h[t], pl[6], pl[7]);
                double[] fc = linear(y, pl[8], pl[9], e, c.nInner());
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
            double xi = x[i];
            for (int o = 0; o < out; o++) {
                y[o] += xi * w[i * out + o];
            }
        }
        return y;
    }
}
