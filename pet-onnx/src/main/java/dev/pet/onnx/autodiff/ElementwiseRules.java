package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Rules for elementwise arithmetic and activations, with broadcasting handled by {@link GradContext#reduceTo}. */
final class ElementwiseRules {
    private ElementwiseRules() {
    }

    static void register(Map<String, GradientRule> r) {
        r.put("Add", c -> c.grads(
                c.needs(0) ? c.reduceTo(c.outputGrad(0), c.input(0)) : null,
                c.needs(1) ? c.reduceTo(c.outputGrad(0), c.input(1)) : null));
        r.put("Sub", c -> c.grads(
                c.needs(0) ? c.reduceTo(c.outputGrad(0), c.input(0)) : null,
                c.needs(1) ? c.reduceTo(c.builder().neg(c.outputGrad(0)), c.input(1)) : null));
        r.put("Mul", c -> {
            GraphBuilder b = c.builder();
            Value g = c.outputGrad(0);
            return c.grads(
                    c.needs(0) ? c.reduceTo(b.mul(g, c.input(1)), c.input(0)) : null,
                    c.needs(1) ? c.reduceTo(b.mul(g, c.input(0)), c.input(1)) : null);
        });
        r.put("Div", c -> {
            GraphBuilder b = c.builder();
            Value g = c.outputGrad(0);
            Value ga = c.needs(0) || c.needs(1) ? b.div(g, c.input(1)) : null;
            return c.grads(
                    c.needs(0) ? c.reduceTo(ga, c.input(0)) : null,
                    // d(a/b)/db = -(a/b)/b, so the gradient is -ga * out
                    c.needs(1) ? c.reduceTo(b.neg(b.mul(ga, c.output(0))), c.input(1)) : null);
        });
        r.put("Sum", c -> {
            List<Value> out = new ArrayList<>();
            for (int i = 0; i < c.node().inputCount(); i++) {
                out.add(c.needs(i) ? c.reduceTo(c.outputGrad(0), c.input(i)) : null);
            }
            return out;
        });
        r.put("Neg", c -> c.grads(c.builder().neg(c.outputGrad(0))));
        r.put("Identity", c -> c.grads(c.outputGrad(0)));
        r.put("Pow", ElementwiseRules::pow);
        r.put("Sqrt", c -> c.grads(c.builder().div(c.builder().mul(c.outputGrad(0), c.scalar(c.output(0), 0.5)),
                c.output(0))));
        r.put("Reciprocal", c -> {
            GraphBuilder b = c.builder();
            Value y = c.output(0);
            return c.grads(b.neg(b.mul(c.outputGrad(0), b.mul(y, y))));
        });
        r.put("Exp", c -> c.grads(c.builder().mul(c.outputGrad(0), c.output(0))));
        r.put("Log", c -> c.grads(c.builder().div(c.outputGrad(0), c.input(0))));
        r.put("Tanh", c -> {
            GraphBuilder b = c.builder();
            Value y = c.output(0);
            return c.grads(b.mul(c.outputGrad(0), b.sub(c.scalar(y, 1), b.mul(y, y))));
        });
        r.put("Sigmoid", c -> {
            GraphBuilder b = c.builder();
            Value y = c.output(0);
            return c.grads(b.mul(c.outputGrad(0), b.mul(y, b.sub(c.scalar(y, 1), y))));
        });
        r.put("Erf", c -> {
            GraphBuilder b = c.builder();
            Value x = c.input(0);
            Value d = b.mul(c.scalar(x, 2 / Math.sqrt(Math.PI)), b.exp(b.neg(b.mul(x, x))));
            return c.grads(b.mul(c.outputGrad(0), d));
        });
        r.put("Sin", c -> c.grads(c.builder().mul(c.outputGrad(0), c.builder().op("Cos", List.of(c.input(0))))));
        r.put("Cos", c -> c.grads(c.builder().neg(c.builder().mul(c.outputGrad(0),
                c.builder().op("Sin", List.of(c.input(0)))))));
        r.put("Relu", c -> {
            GraphBuilder b = c.builder();
            Value x = c.input(0);
            Value zero = c.scalar(x, 0);
            return c.grads(b.where(b.greater(x, zero), c.outputGrad(0), zero));
        });
        r.put("Gelu", ElementwiseRules::gelu);
        r.put("Where", c -> {
            GraphBuilder b = c.builder();
            Value g = c.outputGrad(0);
            Value zero = c.scalar(g, 0);
            return c.grads(null,
                    c.needs(1) ? c.reduceTo(b.where(c.input(0), g, zero), c.input(1)) : null,
                    c.needs(2) ? c.reduceTo(b.where(c.input(0), zero, g), c.input(2)) : null);
        });
        r.put("Expand", c -> c.grads(c.reduceTo(c.outputGrad(0), c.input(0)), null));
        r.put("Cast", c -> {
            DataType from = c.dtype(c.input(0));
            if (!from.isFloatingPoint()) {
                throw new OnnxException("cannot differentiate " + c.node().describe() + ": a cast from " + from
                        + " carries no gradient");
            }
            return c.grads(c.builder().cast(c.outputGrad(0), from));
        });
        r.put("Dropout", c -> {
            GraphBuilder b = c.builder();
            Value x = c.input(0);
            Value mask = c.node().graph().ensureOutput(c.node(), 1, x.type().withDataType(DataType.BOOL));
            double ratio = 0.5;
            if (c.input(1) != null) {
                Tensor t = ShapeInference.constantValue(c.input(1));
                if (t == null) {
                    throw new OnnxException("cannot differentiate " + c.node().describe()
                            + ": its ratio must be a constant");
                }
                ratio = t.toDoubleArray()[0];
            }
            Tensor training = c.input(2) == null ? null : ShapeInference.constantValue(c.input(2));
            boolean isTraining = c.input(2) != null && (training == null || training.toDoubleArray()[0] != 0);
            if (!isTraining || ratio == 0) {
                return c.grads(c.outputGrad(0));
            }
            Value scaled = b.mul(c.outputGrad(0), b.cast(mask, c.dtype(x)));
            return c.grads(b.mul(scaled, c.scalar(x, 1 / (1 - ratio))));
        });
    }

    private static List<Value> pow(GradContext c) {
        if (c.needs(1)) {
            throw new OnnxException("cannot differentiate " + c.node().describe()
                    + " with respect to its exponent; only constant exponents are supported");
        }
        GraphBuilder b = c.builder();
        Value x = c.input(0);
        Value e = c.input(1);
        Tensor constant = ShapeInference.constantValue(e);
        Value d;
        if (constant != null && constant.elementCount() == 1) {
            double k = constant.toDoubleArray()[0];
            if (k == 2) {
                d = b.mul(x, c.scalar(x, 2));
            } else if (k == 1) {
                d = null;
            } else {
                d = b.mul(c.scalar(x, k), b.pow(x, c.scalar(x, k - 1)));
            }
        } else {
            Value eCast = c.dtype(e) == c.dtype(x) ? e : b.cast(e, c.dtype(x));
            d = b.mul(eCast, b.pow(x, b.sub(eCast, c.scalar(x, 1))));
        }
        Value g = d == null ? c.outputGrad(0) : b.mul(c.outputGrad(0), d);
        return c.grads(c.reduceTo(g, x), null);
    }

    /** d/dx of both GELU forms (opset 20 Gelu). */
    private static List<Value> gelu(GradContext c) {
        GraphBuilder b = c.builder();
        Value x = c.input(0);
        Attribute approx = c.node().attribute("approximate");
        Value d;
        if (approx != null && approx.asString().equals("tanh")) {
            // y = 0.5x(1+t), t = tanh(u), u = k(x + 0.044715x^3); y' = 0.5(1+t) + 0.5x(1-t^2)k(1 + 3*0.044715x^2)
            double k = Math.sqrt(2 / Math.PI);
            Value x2 = b.mul(x, x);
            Value u = b.mul(c.scalar(x, k), b.add(x, b.mul(c.scalar(x, 0.044715), b.mul(x2, x))));
            Value t = b.tanh(u);
            Value one = c.scalar(x, 1);
            Value du = b.mul(c.scalar(x, k), b.add(one, b.mul(c.scalar(x, 3 * 0.044715), x2)));
            d = b.add(b.mul(c.scalar(x, 0.5), b.add(one, t)),
                    b.mul(b.mul(c.scalar(x, 0.5), x), b.mul(b.sub(one, b.mul(t, t)), du)));
        } else {
            // y = x Φ(x); y' = Φ(x) + x φ(x)
            Value cdf = b.mul(c.scalar(x, 0.5), b.add(c.scalar(x, 1), b.erf(b.mul(x, c.scalar(x, 1 / Math.sqrt(2))))));
            Value pdf = b.mul(c.scalar(x, 1 / Math.sqrt(2 * Math.PI)),
                    b.exp(b.mul(c.scalar(x, -0.5), b.mul(x, x))));
            d = b.add(cdf, b.mul(x, pdf));
        }
        return c.grads(b.mul(c.outputGrad(0), d));
    }
}
