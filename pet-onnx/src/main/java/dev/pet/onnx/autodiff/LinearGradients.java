package dev.pet.onnx.autodiff;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import java.util.List;

/** MatMul (batched, broadcast, 1-D operands) and Gemm (all transposes, alpha, beta, broadcast C). */
final class LinearGradients {
    private LinearGradients() {
    }

    static void register(GradientRegistry r) {
        r.register("MatMul", LinearGradients::matMul);
        r.register("Gemm", LinearGradients::gemm);
    }

    private static void matMul(Node n, GradientContext c) {
        GraphBuilder b = c.builder();
        Value g = c.grad(n, 0);
        Value x = n.input(0);
        Value w = n.input(1);
        int rx = GradientContext.rank(x);
        int rw = GradientContext.rank(w);
        if (rx >= 2 && rw == 2) {
            // The common linear layer [..., K] x [K, N]: flatten the leading axes so each gradient is one Gemm
            // with a transposed operand (no Transpose node, no batched product to reduce afterwards).
            Value g2 = rx == 2 ? g : b.flatten(g, rx - 1);
            c.propagate(x, () -> {
                // x·Wᵀ' where W = Transpose(V) (a tied LM head): use V directly instead of transposing twice
                Value v = transposedFrom(w);
                Value gx = v != null ? gemm(b, g2, v, 1f, false, false)
                        : gemm(b, g2, QuantizedGradients.dequantizedAgain(w, c), 1f, false, true);
                return rx == 2 ? gx : c.reshapeLike(gx, x);
            });
            c.propagate(w, () -> gemm(b, rx == 2 ? x : b.flatten(x, rx - 1), g2, 1f, true, false));
            return;
        }
        // General case: promote 1-D operands to matrices, use batched MatMul, reduce broadcast batch axes.
        Value gp = g;
        if (rx == 1 && rw == 1) {
            gp = b.reshape(g, c.ints(1, 1));
        } else if (rx == 1) {
            gp = b.unsqueeze(g, -2);
        } else if (rw == 1) {
            gp = b.unsqueeze(g, -1);
        }
        Value gpFinal = gp;
        Value xp = rx == 1 ? b.unsqueeze(x, 0) : x;
        Value wp = rw == 1 ? b.unsqueeze(w, 1) : w;
        c.propagate(x, () -> {
            Value gx = b.matMul(gpFinal, transposeLast2(b, wp));
            gx = c.unbroadcast(gx, xp, gx.type());
            return rx == 1 ? c.reshapeLike(gx, x) : gx;
        });
        c.propagate(w, () -> {
            Value gw = b.matMul(transposeLast2(b, xp), gpFinal);
            gw = c.unbroadcast(gw, wp, gw.type());
            return rw == 1 ? c.reshapeLike(gw, w) : gw;
        });
    }

    /** The input of {@code v} when {@code v} is a Transpose swapping the last two axes of it, else null. */
    private static Value transposedFrom(Value v) {
        Node p = v.producer();
        if (p == null || !p.opType().equals("Transpose") || !p.domain().isEmpty() || !p.input(0).type().hasRank()) {
            return null;
        }
        int r = p.input(0).type().rank();
        long[] perm = p.intsAttr("perm", null);
        for (int i = 0; i < r; i++) {
            long expected = i == r - 2 ? r - 1 : i == r - 1 ? r - 2 : i;
            if ((perm == null ? r - 1 - i : perm[i]) != expected) {
                return null;
            }
        }
        return r >= 2 ? p.input(0) : null;
    }

    private static Value transposeLast2(GraphBuilder b, Value v) {
        Value undone = transposedFrom(v);
        if (undone != null) {
            return undone;
        }
        int r = GradientContext.rank(v);
        long[] perm = new long[r];
        for (int i = 0; i < r; i++) {
            perm[i] = i;
        }
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return b.transpose(v, perm);
    }

    private static Value gemm(GraphBuilder b, Value a, Value m, float alpha, boolean transA, boolean transB) {
        return b.op("Gemm", List.of(a, m), Attribute.of("alpha", alpha), Attribute.of("transA", transA ? 1L : 0L),
                Attribute.of("transB", transB ? 1L : 0L));
    }

    private static void gemm(Node n, GradientContext c) {
        // Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A, B' = transB ? Bᵀ : B
        GraphBuilder b = c.builder();
        Value g = c.grad(n, 0);
        Value a = n.input(0);
        Value m = n.input(1);
        float alpha = n.floatAttr("alpha", 1f);
        float beta = n.floatAttr("beta", 1f);
        boolean ta = n.intAttr("transA", 0) != 0;
        boolean tb = n.intAttr("transB", 0) != 0;
        c.propagate(a, () -> {
            Value mb = QuantizedGradients.dequantizedAgain(m, c);
            return ta ? gemm(b, mb, g, alpha, tb, true) : gemm(b, g, mb, alpha, false, !tb);
        });
        c.propagate(m, () -> tb ? gemm(b, g, a, alpha, true, ta) : gemm(b, a, g, alpha, !ta, false));
        Value cIn = n.input(2);
        c.propagate(cIn, () -> {
            Value gc = beta == 1f ? g : b.mul(g, c.scalarLike(g, beta));
            return c.unbroadcast(gc, cIn, n.output(0).type());
        });
    }
}
