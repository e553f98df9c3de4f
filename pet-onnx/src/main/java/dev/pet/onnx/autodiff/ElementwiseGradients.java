package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;

/** Elementwise ops: arithmetic with broadcasting (Add ... Sum), unary functions, activations, Where, Cast, Dropout. */
final class ElementwiseGradients {
    private ElementwiseGradients() {
    }

    static void register(GradientRegistry r) {
        r.register("Identity", (n, c) -> c.propagate(n.input(0), () -> c.grad(n, 0)));
        r.register("Add", (n, c) -> {
            Value g = c.grad(n, 0);
            c.propagate(n.input(0), () -> c.unbroadcast(g, n.input(0), n.output(0).type()));
            c.propagate(n.input(1), () -> c.unbroadcast(g, n.input(1), n.output(0).type()));
        });
        r.register("Sub", (n, c) -> {
            Value g = c.grad(n, 0);
            c.propagate(n.input(0), () -> c.unbroadcast(g, n.input(0), n.output(0).type()));
            c.propagate(n.input(1), () -> c.builder().neg(c.unbroadcast(g, n.input(1), n.output(0).type())));
        });
        r.register("Mul", (n, c) -> {
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            Value x = n.input(0);
            Value y = n.input(1);
            if (silu(n, c, g)) {
                return;
            }
            c.propagate(x, () -> c.unbroadcast(b.mul(g, y), x, n.output(0).type()));
            c.propagate(y, () -> c.unbroadcast(b.mul(g, x), y, n.output(0).type()));
        });
        r.register("Div", (n, c) -> {
            // z = x / y: dz/dx = 1/y, dz/dy = -z/y (reusing the forward quotient)
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            Value x = n.input(0);
            Value y = n.input(1);
            Value z = n.output(0);
            c.propagate(x, () -> c.unbroadcast(b.div(g, y), x, z.type()));
            c.propagate(y, () -> b.neg(c.unbroadcast(b.div(b.mul(g, z), y), y, z.type())));
        });
        r.register("Sum", (n, c) -> {
            Value g = c.grad(n, 0);
            for (Value in : n.inputs()) {
                c.propagate(in, () -> c.unbroadcast(g, in, n.output(0).type()));
            }
        });
        r.register("Sin", (n, c) -> c.propagate(n.input(0),
                () -> c.builder().mul(c.grad(n, 0), c.builder().op("Cos", List.of(n.input(0))))));
        r.register("Cos", (n, c) -> c.propagate(n.input(0),
                () -> c.builder().neg(c.builder().mul(c.grad(n, 0), c.builder().op("Sin", List.of(n.input(0)))))));
        r.register("Neg", (n, c) -> c.propagate(n.input(0), () -> c.builder().neg(c.grad(n, 0))));
        r.register("Pow", ElementwiseGradients::pow);
        r.register("Sqrt", (n, c) -> c.propagate(n.input(0), () -> {
            // d√x = 1 / (2√x)
            GraphBuilder b = c.builder();
            return b.div(b.mul(c.grad(n, 0), c.scalarLike(n.output(0), 0.5)), n.output(0));
        }));
        r.register("Reciprocal", (n, c) -> c.propagate(n.input(0), () -> {
            // d(1/x) = -(1/x)²
            GraphBuilder b = c.builder();
            Value y = n.output(0);
            return b.neg(b.mul(c.grad(n, 0), b.mul(y, y)));
        }));
        r.register("Exp", (n, c) -> c.propagate(n.input(0), () -> c.builder().mul(c.grad(n, 0), n.output(0))));
        r.register("Log", (n, c) -> c.propagate(n.input(0), () -> c.builder().div(c.grad(n, 0), n.input(0))));
        r.register("Tanh", (n, c) -> c.propagate(n.input(0), () -> {
            GraphBuilder b = c.builder();
            Value y = n.output(0);
            return b.mul(c.grad(n, 0), b.sub(c.scalarLike(y, 1), b.mul(y, y)));
        }));
        r.register("Sigmoid", (n, c) -> c.propagate(n.input(0), () -> {
            GraphBuilder b = c.builder();
            Value y = n.output(0);
            return b.mul(c.grad(n, 0), b.mul(y, b.sub(c.scalarLike(y, 1), y)));
        }));
        r.register("Erf", (n, c) -> c.propagate(n.input(0), () -> {
            // d erf(x) = 2/√π · exp(-x²)
            GraphBuilder b = c.builder();
            Value x = n.input(0);
            Value e = b.exp(b.neg(b.mul(x, x)));
            return b.mul(c.grad(n, 0), b.mul(e, c.scalarLike(x, 2 / Math.sqrt(Math.PI))));
        }));
        r.register("Relu", (n, c) -> c.propagate(n.input(0), () -> {
            GraphBuilder b = c.builder();
            Value x = n.input(0);
            return b.where(b.greater(x, c.scalarLike(x, 0)), c.grad(n, 0), c.scalarLike(x, 0));
        }));
        r.register("Gelu", ElementwiseGradients::gelu);
        r.register("Where", (n, c) -> {
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            Value cond = n.input(0);
            Value zero = c.scalarLike(n.output(0), 0);
            c.propagate(n.input(1), () -> c.unbroadcast(b.where(cond, g, zero), n.input(1), n.output(0).type()));
            c.propagate(n.input(2), () -> c.unbroadcast(b.where(cond, zero, g), n.input(2), n.output(0).type()));
        });
        r.register("Cast", (n, c) -> c.propagate(n.input(0), () -> {
            Value g = c.grad(n, 0);
            DataType from = GradientContext.floatType(n.input(0));
            return from == g.type().dataType() ? g : c.builder().cast(g, from);
        }));
        r.register("Dropout", ElementwiseGradients::dropout);
    }

    /**
     * {@code s = x·sigmoid(x)} (SiLU, as SwiGLU MLPs write it): d s/dx = σ + x·σ·(1−σ) = σ + s − s·σ, one
     * contribution of four passes in place of the product rule's two plus the sigmoid's three and their sum. The
     * sigmoid gets nothing from this node (its other consumers, if any, still reach x through its own rule).
     * False, leaving the general rule, when {@code n} is not that pattern.
     */
    private static boolean silu(Node n, GradientContext c, Value g) {
        Value x = n.input(0);
        Value sig = n.input(1);
        if (x == null || sig == null) {
            return false;
        }
        if (isSigmoidOf(x, sig)) { // written sigmoid(x)·x
            Value t = x;
            x = sig;
            sig = t;
        } else if (!isSigmoidOf(sig, x)) {
            return false;
        }
        GraphBuilder b = c.builder();
        Value s = n.output(0);
        Value sigmoid = sig;
        c.propagate(x, () -> b.mul(g, b.sub(b.add(sigmoid, s), b.mul(s, sigmoid))));
        return true;
    }

    /** Whether {@code v} is {@code Sigmoid(of)} (same shape, so the product broadcasts nothing). */
    private static boolean isSigmoidOf(Value v, Value of) {
        Node p = v.producer();
        return p != null && p.opType().equals("Sigmoid") && p.domain().isEmpty() && p.input(0) == of;
    }

    private static void pow(Node n, GradientContext c) {
        GraphBuilder b = c.builder();
        Value g = c.grad(n, 0);
        Value x = n.input(0);
        Value e = n.input(1);
        Value y = n.output(0);
        DataType t = GradientContext.floatType(x);
        c.propagate(x, () -> {
            // d x^e = e · x^(e-1)
            Tensor ec = ShapeInference.constantValue(e);
            Value local;
            if (ec != null && ec.elementCount() == 1 && ec.toDoubleArray()[0] == 2.0) {
                local = b.mul(x, c.scalar(t, 2.0));
            } else if (ec != null && ec.elementCount() == 1 && ec.toDoubleArray()[0] == 1.0) {
                local = null;
            } else if (ec != null) {
                double[] ev = ec.toDoubleArray();
                double[] em1 = new double[ev.length];
                for (int i = 0; i < ev.length; i++) {
                    em1[i] = ev[i] - 1;
                }
                Value coef = b.constant(Tensor.fromDoubles(t, ev, ec.shape()));
                Value expMinus1 = b.constant(Tensor.fromDoubles(ec.dataType().isFloatingPoint() ? ec.dataType() : t,
                        em1, ec.shape()));
                local = b.mul(coef, b.pow(x, expMinus1));
            } else {
                Value et = e.type().dataType() == t ? e : b.cast(e, t);
                local = b.mul(et, b.pow(x, b.sub(et, c.scalar(t, 1))));
            }
            return c.unbroadcast(local == null ? g : b.mul(g, local), x, y.type());
        });
        c.propagate(e, () -> {
            // d x^e / de = x^e · ln x
            Value ge = c.unbroadcast(b.mul(b.mul(g, y), b.log(x)), e, y.type());
            return e.type().dataType() == t ? ge : b.cast(ge, e.type().dataType());
        });
    }

    private static void gelu(Node n, GradientContext c) {
        c.propagate(n.input(0), () -> {
            GraphBuilder b = c.builder();
            Value x = n.input(0);
            DataType t = GradientContext.floatType(x);
            String approximate = n.stringAttr("approximate", "none");
            Value half = c.scalar(t, 0.5);
            Value one = c.scalar(t, 1);
            Value local;
            if (approximate.equals("tanh")) {
                // y = ½x(1+u), u = tanh(k(x + a x³)); y' = ½(1+u) + ½x(1-u²)·k(1 + 3a x²)
                double k = Math.sqrt(2 / Math.PI);
                double a = 0.044715;
                Value x2 = b.mul(x, x);
                Value inner = b.mul(c.scalar(t, k), b.add(x, b.mul(c.scalar(t, a), b.mul(x2, x))));
                Value u = b.tanh(inner);
                Value dInner = b.add(c.scalar(t, k), b.mul(c.scalar(t, 3 * a * k), x2));
                Value left = b.mul(half, b.add(one, u));
                Value right = b.mul(b.mul(half, x), b.mul(b.sub(one, b.mul(u, u)), dInner));
                local = b.add(left, right);
            } else if (approximate.equals("none")) {
                // y = xΦ(x); y' = Φ(x) + x·φ(x)
                Value cdf = b.mul(half, b.add(one, b.erf(b.mul(x, c.scalar(t, 1 / Math.sqrt(2))))));
                Value pdf = b.mul(c.scalar(t, 1 / Math.sqrt(2 * Math.PI)),
                        b.exp(b.mul(b.mul(x, x), c.scalar(t, -0.5))));
                local = b.add(cdf, b.mul(x, pdf));
            } else {
                throw new OnnxException(n.describe() + ": Gelu approximate must be 'none' or 'tanh', found '"
                        + approximate + "'");
            }
            return b.mul(c.grad(n, 0), local);
        });
    }

    /** Whether a Dropout node may run in training mode (training_mode input present and not constant false). */
    static boolean dropoutMayTrain(Node n) {
        Value mode = n.input(2);
        if (mode == null) {
            return false;
        }
        Tensor t = ShapeInference.constantValue(mode);
        return t == null || t.toDoubleArray()[0] != 0;
    }

    private static void dropout(Node n, GradientContext c) {
        c.propagate(n.input(0), () -> {
            Value g = c.grad(n, 0);
            if (!dropoutMayTrain(n)) {
                return g;
            }
            GraphBuilder b = c.builder();
            DataType t = GradientContext.floatType(n.input(0));
            Value ratio = n.input(1);
            Tensor rc = ratio == null ? Tensor.scalar(0.5) : ShapeInference.constantValue(ratio);
            Value scale;
            if (rc != null) {
                double r = rc.toDoubleArray()[0];
                scale = c.scalar(t, r == 1.0 ? 0.0 : 1 / (1 - r));
            } else {
                Value rt = ratio.type().dataType() == t ? ratio : b.cast(ratio, t);
                scale = b.div(c.scalar(t, 1), b.sub(c.scalar(t, 1), rt));
            }
            Value mode = n.input(2);
            if (ShapeInference.constantValue(mode) == null) {
                scale = b.where(mode, scale, c.scalar(t, 1));
            }
            return b.where(n.output(1), b.mul(g, scale), c.scalar(t, 0));
        });
    }
}
