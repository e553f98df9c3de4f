package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Rules for Softmax, LogSoftmax, LayerNormalization and SoftmaxCrossEntropyLoss. */
final class NormalizationRules {
    private NormalizationRules() {
    }

    static void register(Map<String, GradientRule> r) {
        r.put("Softmax", c -> {
            GraphBuilder b = c.builder();
            Value y = c.output(0);
            long axis = axis(c, -1);
            // dx = y * (g - sum(g * y))
            Value dot = b.reduceSum(b.mul(c.outputGrad(0), y), new long[] {axis}, true);
            return c.grads(b.mul(y, b.sub(c.outputGrad(0), dot)));
        });
        r.put("LogSoftmax", c -> {
            GraphBuilder b = c.builder();
            long axis = axis(c, -1);
            // dx = g - softmax * sum(g)
            Value sum = b.reduceSum(c.outputGrad(0), new long[] {axis}, true);
            return c.grads(b.sub(c.outputGrad(0), b.mul(b.exp(c.output(0)), sum)));
        });
        r.put("LayerNormalization", NormalizationRules::layerNorm);
        r.put("SoftmaxCrossEntropyLoss", NormalizationRules::softmaxCrossEntropy);
    }

    private static long axis(GradContext c, long dflt) {
        long axis = c.node().intAttr("axis", dflt);
        return axis < 0 ? axis + c.input(0).type().rank() : axis;
    }

    private static List<Value> layerNorm(GradContext c) {
        GraphBuilder b = c.builder();
        Node n = c.node();
        Value x = c.input(0);
        Value scale = c.input(1);
        int rank = x.type().rank();
        int axis = (int) axis(c, -1);
        if (c.outputGrad(1) != null || c.outputGrad(2) != null) {
            throw new OnnxException("cannot differentiate " + n.describe() + " through its Mean/InvStdDev outputs");
        }
        // Read the statistics the forward pass computes anyway instead of recomputing them.
        List<Dim> statDims = new ArrayList<>(x.type().dims().subList(0, axis));
        for (int i = axis; i < rank; i++) {
            statDims.add(Dim.of(1));
        }
        long[] normAxes = ShapeRules.range(rank - axis);
        for (int i = 0; i < normAxes.length; i++) {
            normAxes[i] += axis;
        }
        Value mean;
        Value invStd;
        long stash = n.intAttr("stash_type", 1);
        if (c.dtype(x) == DataType.FLOAT && stash == 1) {
            // Read the statistics the forward pass computes anyway instead of recomputing them.
            TensorType st = new TensorType(DataType.FLOAT, statDims);
            mean = n.graph().ensureOutput(n, 1, st);
            invStd = n.graph().ensureOutput(n, 2, st);
        } else {
            // ONNX Runtime stashes float32 statistics for other input types; recompute them at full precision.
            mean = b.reduceMean(x, normAxes, true);
            Value centered = b.sub(x, mean);
            Value var = b.reduceMean(b.mul(centered, centered), normAxes, true);
            float eps = n.floatAttr("epsilon", 1e-5f);
            invStd = b.reciprocal(b.sqrt(b.add(var, c.scalar(x, eps))));
        }
        Value g = c.outputGrad(0);
        Value xhat = b.mul(b.sub(x, mean), invStd);
        Value gx = null;
        if (c.needs(0)) {
            Value gs = b.mul(g, scale);
            Value meanGs = b.reduceMean(gs, normAxes, true);
            Value meanGsX = b.reduceMean(b.mul(gs, xhat), normAxes, true);
            gx = b.mul(invStd, b.sub(b.sub(gs, meanGs), b.mul(xhat, meanGsX)));
        }
        Value gScale = c.needs(1) ? c.reduceTo(b.mul(g, xhat), scale) : null;
        Value gBias = c.needs(2) ? c.reduceTo(g, c.input(2)) : null;
        return c.grads(gx, gScale, gBias);
    }

    /**
     * d(loss)/d(scores) = (softmax - onehot(label)) scaled by each position's weight in the reduction; positions whose
     * label is ignore_index get zero.
     */
    private static List<Value> softmaxCrossEntropy(GradContext c) {
        GraphBuilder b = c.builder();
        Node n = c.node();
        if (n.inputCount() > 2 && n.input(2) != null) {
            throw new OnnxException("cannot differentiate " + n.describe() + ": class weights are not supported");
        }
        if (c.outputGrad(1) != null) {
            throw new OnnxException("cannot differentiate " + n.describe() + " through its log_prob output");
        }
        Value scores = c.input(0);
        Value labels = c.input(1);
        DataType dt = c.dtype(scores);
        Value logProb = n.graph().ensureOutput(n, 1, scores.type());
        Value prob = b.exp(logProb);
        Attribute ignore = n.attribute("ignore_index");
        Value labels64 = c.dtype(labels) == DataType.INT64 ? labels : b.cast(labels, DataType.INT64);
        Value mask;
        Value safeLabels;
        if (ignore != null) {
            Value keep = b.not(b.equal(labels64, b.scalarInt(ignore.asInt())));
            safeLabels = b.where(keep, labels64, b.scalarInt(0));
            mask = b.cast(keep, dt);
        } else {
            safeLabels = labels64;
            mask = null;
        }
        // onehot = (unsqueeze(label, 1) == class index), built from Equal because ORT's OneHot lacks most types.
        int rank = scores.type().rank();
        Value classes = b.range(b.scalarInt(0), b.reshape(b.shape(scores, 1, 2), new long[0]), b.scalarInt(1));
        long[] classShape = new long[rank - 1];
        java.util.Arrays.fill(classShape, 1);
        classShape[0] = -1;
        Value oneHot = b.cast(b.equal(b.unsqueeze(safeLabels, 1), b.reshape(classes, classShape)), dt);
        Value diff = b.sub(prob, oneHot);
        String reduction = n.stringAttr("reduction", "mean");
        Value g = c.outputGrad(0);
        Value weight;
        switch (reduction) {
            case "none" -> weight = mask == null ? g : b.mul(g, mask);
            case "sum" -> weight = mask == null ? g : b.mul(mask, g);
            case "mean" -> {
                Value denom = mask == null ? b.cast(b.reduceProd(b.shape(labels)), dt)
                        : b.reduceSum(mask, new long[0], false);
                Value per = b.div(g, denom);
                weight = mask == null ? per : b.mul(mask, per);
            }
            default -> throw new OnnxException("cannot differentiate " + n.describe() + ": unknown reduction '"
                    + reduction + "'");
        }
        if (weight.type().hasRank() && weight.type().rank() > 0) {
            weight = b.unsqueeze(weight, 1);
        }
        return c.grads(b.mul(diff, weight), null);
    }
}
