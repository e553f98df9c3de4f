package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.List;

/** Softmax, LogSoftmax, LayerNormalization and SoftmaxCrossEntropyLoss. */
final class NormalizationGradients {
    private NormalizationGradients() {
    }

    static void register(GradientRegistry r) {
        r.register("Softmax", (n, c) -> c.propagate(n.input(0), () -> {
            // dx = y ⊙ (g - Σ(g ⊙ y))
            GraphBuilder b = c.builder();
            Value y = n.output(0);
            Value g = c.grad(n, 0);
            long axis = GradientContext.axis(n.intAttr("axis", -1), GradientContext.rank(y));
            return b.mul(y, b.sub(g, b.reduceSum(b.mul(g, y), new long[] {axis}, true)));
        }));
        r.register("LogSoftmax", NormalizationGradients::logSoftmax);
        r.register("LayerNormalization", NormalizationGradients::layerNorm);
        r.register("SoftmaxCrossEntropyLoss", NormalizationGradients::crossEntropy);
    }

    /**
     * dx = g - exp(y) ⊙ Σg. When g is a {@link GradientContext.Scatter} along the softmax axis (the cross-entropy
     * of a GatherElements of the log-probabilities), dx = scatter_add(-exp(y) ⊙ Σu, indices, u) with Σu the row
     * sums of the updates: softmax minus one-hot from the saved log-probabilities alone, with no zero-filled or
     * summed tensor of the logits' size.
     */
    private static void logSoftmax(Node n, GradientContext c) {
        c.propagate(n.input(0), () -> {
            GraphBuilder b = c.builder();
            Value y = n.output(0);
            int rank = GradientContext.rank(y);
            long axis = GradientContext.axis(n.intAttr("axis", -1), rank);
            GradientContext.Scatter s = c.scatterOnly(y);
            if (s != null && s.axis() == axis) {
                return c.scatterAdd(b.mul(b.exp(y), b.neg(rowSums(c, y, s, axis))), s);
            }
            Value g = s != null ? c.scatterAdd(c.zeros(y), s) : c.grad(n, 0);
            return b.sub(g, b.mul(b.exp(y), b.reduceSum(g, new long[] {axis}, true)));
        });
    }

    /**
     * Σ over {@code axis} of a scatter's updates, shaped like {@code y} with that axis 1: scattered with index 0 into
     * zeros, which sums correctly also when the indices cover only part of the other axes.
     */
    private static Value rowSums(GradientContext c, Value y, GradientContext.Scatter s, long axis) {
        GraphBuilder b = c.builder();
        int rank = GradientContext.rank(y);
        List<Value> dims = new java.util.ArrayList<>();
        for (int i = 0; i < rank; i++) {
            dims.add(i == axis ? c.ints(1) : c.dimOf(y, i));
        }
        Value shape = rank == 1 ? dims.get(0) : b.concat(dims, 0);
        Value zeroIndex = c.zeros(c.shapeOf(s.indices()), DataType.INT64);
        return c.scatterAdd(c.zeros(shape, GradientContext.floatType(y)),
                new GradientContext.Scatter(zeroIndex, s.updates(), axis));
    }

    private static void layerNorm(Node n, GradientContext c) {
        GraphBuilder b = c.builder();
        Value x = n.input(0);
        Value scale = n.input(1);
        Value bias = n.input(2);
        Value g = c.grad(n, 0);
        if (g == null) {
            throw new OnnxException(n.describe() + ": gradients through the Mean/InvStdDev outputs are not supported");
        }
        int r = GradientContext.rank(x);
        int a = GradientContext.axis(n.intAttr("axis", -1), r);
        DataType t = GradientContext.floatType(x);
        long[] normAxes = range(a, r);
        long[] batchAxes = range(0, a);
        Value mean = n.output(1);
        Value inv = n.output(2);
        if (mean.type().dataType() != t) {
            // The statistics are stored in float (the schema's U); for other input types (float64 gradient
            // checks) recompute them at full precision rather than lose digits through a float round trip.
            mean = b.reduceMean(x, normAxes, true);
            Value centered = b.sub(x, mean);
            Value variance = b.reduceMean(b.mul(centered, centered), normAxes, true);
            inv = b.reciprocal(b.sqrt(b.add(variance, c.scalar(t, n.floatAttr("epsilon", 1e-5f)))));
        }
        Value xhat = b.mul(b.sub(x, mean), inv);
        c.propagate(scale, () -> {
            Value gs = b.mul(g, xhat);
            gs = batchAxes.length == 0 ? gs : b.reduceSum(gs, batchAxes, false);
            return c.unbroadcast(gs, scale, gs.type());
        });
        c.propagate(bias, () -> {
            Value gb = batchAxes.length == 0 ? g : b.reduceSum(g, batchAxes, false);
            return c.unbroadcast(gb, bias, gb.type());
        });
        Value invFinal = inv;
        c.propagate(x, () -> {
            // dx = inv · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)), ĝ = g ⊙ scale
            Value gh = b.mul(g, scale);
            Value m1 = b.reduceMean(gh, normAxes, true);
            Value m2 = b.reduceMean(b.mul(gh, xhat), normAxes, true);
            return b.mul(invFinal, b.sub(b.sub(gh, m1), b.mul(xhat, m2)));
        });
    }

    /**
     * Scores [N, C, d...], labels [N, d...]. d scores = (softmax - onehot(label)) · coefficient per sample, where
     * the coefficient is the loss gradient, times the class weight, divided by the total weight of counted samples
     * for "mean", and zero for ignored samples. Gradients reaching the log-probability output add the LogSoftmax
     * rule over the class axis.
     */
    private static void crossEntropy(Node n, GradientContext c) {
        GraphBuilder b = c.builder();
        Value scores = n.input(0);
        Value labels = n.input(1);
        Value weights = n.input(2);
        Value logProb = n.output(1);
        Value gLoss = c.grad(n, 0);
        Value gLogProb = c.grad(n, 1);
        DataType t = GradientContext.floatType(scores);
        String reduction = n.stringAttr("reduction", "mean");
        c.propagate(scores, () -> {
            Value prob = b.exp(logProb);
            Value total = null;
            if (gLoss != null) {
                Value safe = labels;
                Value coef = null;
                Attribute ignore = n.attribute("ignore_index");
                if (ignore != null) {
                    Value valid = b.not(b.equal(labels, b.constant(
                            dev.pet.onnx.tensor.Tensor.fromDoubles(labels.type().dataType(),
                                    new double[] {ignore.asInt()}))));
                    safe = b.where(valid, labels, b.constant(dev.pet.onnx.tensor.Tensor.fromDoubles(
                            labels.type().dataType(), new double[] {0})));
                    coef = b.cast(valid, t);
                }
                if (weights != null) {
                    Value w = b.gather(weights, safe, 0);
                    w = w.type().dataType() == t ? w : b.cast(w, t);
                    coef = coef == null ? w : b.mul(coef, w);
                }
                if (coef == null) {
                    coef = b.expand(c.scalar(t, 1), c.shapeOf(labels));
                }
                switch (reduction) {
                    case "none" -> coef = b.mul(coef, gLoss);
                    case "sum" -> coef = b.mul(coef, gLoss);
                    case "mean" -> {
                        Value denom = b.op("ReduceSum", List.of(coef), Attribute.of("keepdims", 0L));
                        Value zero = c.scalar(t, 0);
                        // all samples ignored: the numerator is zero too; keep the gradient finite (zero)
                        denom = b.where(b.equal(denom, zero), c.scalar(t, 1), denom);
                        coef = b.mul(coef, b.div(gLoss, denom));
                    }
                    default -> throw new OnnxException(n.describe() + ": unknown reduction '" + reduction + "'");
                }
                Value coef1 = b.unsqueeze(coef, 1);
                total = b.op("ScatterElements", List.of(b.mul(prob, coef1), b.unsqueeze(safe, 1), b.neg(coef1)),
                        Attribute.of("axis", 1L), Attribute.of("reduction", "add"));
            }
            if (gLogProb != null) {
                Value fromLp = b.sub(gLogProb, b.mul(prob, b.reduceSum(gLogProb, new long[] {1}, true)));
                total = total == null ? fromLp : b.add(total, fromLp);
            }
            return total;
        });
    }

    private static long[] range(int from, int to) {
        long[] r = new long[Math.max(0, to - from)];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }
}
