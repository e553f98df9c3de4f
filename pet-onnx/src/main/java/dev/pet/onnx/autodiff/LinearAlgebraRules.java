package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import java.util.List;
import java.util.Map;

/** Rules for MatMul and Gemm. */
final class LinearAlgebraRules {
    private LinearAlgebraRules() {
    }

    static void register(Map<String, GradientRule> r) {
        r.put("MatMul", LinearAlgebraRules::matMul);
        r.put("Gemm", LinearAlgebraRules::gemm);
    }

    private static List<Value> matMul(GradContext c) {
        GraphBuilder b = c.builder();
        Value a = c.input(0);
        Value w = c.input(1);
        Value g = c.outputGrad(0);
        TensorType at = a.type();
        TensorType wt = w.type();
        int ra = at.rank();
        int rw = wt.rank();
        Value ga = null;
        Value gw = null;
        if (ra == 1 || rw == 1) {
            // Promote vectors to matrices, differentiate, then drop the added axes again.
            Value a2 = ra == 1 ? b.unsqueeze(a, 0) : a;
            Value w2 = rw == 1 ? b.unsqueeze(w, 1) : w;
            Value g2 = g;
            if (ra == 1) {
                g2 = b.unsqueeze(g2, -2);
            }
            if (rw == 1) {
                g2 = b.unsqueeze(g2, -1);
            }
            if (c.needs(0)) {
                Value full = b.matMul(g2, c.transposeLast2(w2));
                ga = c.reshapeLike(c.reduceTo(full, a2), a);
            }
            if (c.needs(1)) {
                Value full = b.matMul(c.transposeLast2(a2), g2);
                gw = c.reshapeLike(c.reduceTo(full, w2), w);
            }
            return c.grads(ga, gw);
        }
        if (c.needs(0)) {
            ga = c.reduceTo(b.matMul(g, c.transposeLast2(w)), a);
        }
        if (c.needs(1)) {
            if (rw == 2 && ra > 2) {
                // x[..., K] @ W[K, N]: fold the batch axes into rows and take one [K, N] product, no batch reduction.
                long k = at.dims().get(ra - 1).isFixed() ? at.dims().get(ra - 1).value() : -1;
                long n = wt.dims().get(1).isFixed() ? wt.dims().get(1).value() : -1;
                Value a2 = k >= 0 ? b.reshape(a, -1, k) : b.flatten(a, ra - 1);
                Value g2 = n >= 0 ? b.reshape(g, -1, n) : b.flatten(g, ra - 1);
                gw = b.gemm(a2, g2, null, 1f, 1f, true, false);
            } else {
                gw = c.reduceTo(b.matMul(c.transposeLast2(a), g), w);
            }
        }
        return c.grads(ga, gw);
    }

    private static List<Value> gemm(GradContext c) {
        GraphBuilder b = c.builder();
        Value a = c.input(0);
        Value w = c.input(1);
        Value g = c.outputGrad(0);
        float alpha = c.node().floatAttr("alpha", 1f);
        float beta = c.node().floatAttr("beta", 1f);
        boolean ta = c.node().intAttr("transA", 0) != 0;
        boolean tb = c.node().intAttr("transB", 0) != 0;
        Value ga = null;
        Value gw = null;
        if (c.needs(0)) {
            // A' = op(A); dA' = alpha g op(B)^T; dA = dA' or its transpose.
            ga = ta ? b.gemm(w, g, null, alpha, 1f, tb, true) : b.gemm(g, w, null, alpha, 1f, false, !tb);
        }
        if (c.needs(1)) {
            // dB' = alpha op(A)^T g; dB = dB' or its transpose.
            gw = tb ? b.gemm(g, a, null, alpha, 1f, true, ta) : b.gemm(a, g, null, alpha, 1f, !ta, false);
        }
        Value gc = null;
        if (c.needs(2)) {
            Value scaled = beta == 1f ? g : b.mul(g, c.scalar(g, beta));
            gc = c.reduceTo(scaled, c.input(2));
        }
        return c.grads(ga, gw, gc);
    }
}
