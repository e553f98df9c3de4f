package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/** The built-in optimizers, selected by name. */
public final class Optimizers {
    private Optimizers() {
    }

    /** The optimizer {@link OptimizerOptions#name()} selects. */
    public static Optimizer create(OptimizerOptions o) {
        Objects.requireNonNull(o, "options");
        return switch (canonicalName(o.name())) {
            case "AdamW" -> new Adam(o, true);
            case "AdamWeightDecay" -> new Adam(o, false);
            default -> new Sgd(o);
        };
    }

    static String canonicalName(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "adamw" -> "AdamW";
            case "adamweightdecay" -> "AdamWeightDecay";
            case "sgd" -> "SGD";
            default -> throw new OnnxException("unknown optimizer '" + name
                    + "' (expected AdamW, AdamWeightDecay or SGD)");
        };
    }

    private static Value c(GraphBuilder b, Value like, double v) {
        return b.constant(GraphBuilder.elementType(like), v);
    }

    /**
     * Adam with decoupled weight decay. {@code torch} form (AdamW): p ← p·(1 - lr·wd); m, v moments;
     * p ← p - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε). MindSpore form (AdamWeightDecay): no bias correction,
     * p ← p - lr·(m/(√v + ε) + wd·p).
     */
    private static final class Adam implements Optimizer {
        private final OptimizerOptions o;
        private final boolean torch;

        Adam(OptimizerOptions o, boolean torch) {
            this.o = o;
            this.torch = torch;
        }

        @Override
        public String name() {
            return torch ? "AdamW" : "AdamWeightDecay";
        }

        @Override
        public List<String> stateSlots() {
            return List.of("m", "v");
        }

        @Override
        public Update update(GraphBuilder b, Value p, Value g, List<Value> state, Value lr, Value step,
                boolean decay) {
            Value m = b.add(b.mul(state.get(0), c(b, p, o.beta1())), b.mul(g, c(b, p, 1 - o.beta1())));
            Value v = b.add(b.mul(state.get(1), c(b, p, o.beta2())), b.mul(b.mul(g, g), c(b, p, 1 - o.beta2())));
            Value updated;
            if (torch) {
                Value base = decay ? b.mul(p, b.sub(c(b, p, 1), b.mul(lr, c(b, p, o.weightDecay())))) : p;
                Value bc1 = b.sub(c(b, p, 1), b.pow(c(b, p, o.beta1()), step));
                Value bc2 = b.sub(c(b, p, 1), b.pow(c(b, p, o.beta2()), step));
                Value denom = b.add(b.div(b.sqrt(v), b.sqrt(bc2)), c(b, p, o.eps()));
                Value stepSize = b.div(lr, bc1);
                updated = b.sub(base, b.mul(stepSize, b.div(m, denom)));
            } else {
                Value u = b.div(m, b.add(b.sqrt(v), c(b, p, o.eps())));
                if (decay) {
                    u = b.add(u, b.mul(p, c(b, p, o.weightDecay())));
                }
                updated = b.sub(p, b.mul(lr, u));
            }
            return new Update(updated, List.of(m, v));
        }
    }

    /** torch.optim.SGD with dampening 0: g ← g + wd·p; buf ← μ·buf + g; g ← nesterov ? g + μ·buf : buf. */
    private static final class Sgd implements Optimizer {
        private final OptimizerOptions o;

        Sgd(OptimizerOptions o) {
            this.o = o;
        }

        @Override
        public String name() {
            return "SGD";
        }

        @Override
        public List<String> stateSlots() {
            return o.momentum() > 0 ? List.of("momentum") : List.of();
        }

        @Override
        public Update update(GraphBuilder b, Value p, Value g, List<Value> state, Value lr, Value step,
                boolean decay) {
            Value d = decay ? b.add(g, b.mul(p, c(b, p, o.weightDecay()))) : g;
            if (o.momentum() == 0) {
                return new Update(b.sub(p, b.mul(lr, d)), List.of());
            }
            Value buf = b.add(b.mul(state.get(0), c(b, p, o.momentum())), d);
            Value dir = o.nesterov() ? b.add(d, b.mul(buf, c(b, p, o.momentum()))) : buf;
            return new Update(b.sub(p, b.mul(lr, dir)), List.of(buf));
        }
    }

    static DataType checkFloat(Value v) {
        DataType t = v.type().dataType();
        if (t == null || !t.isFloatingPoint()) {
            throw new OnnxException("trainable '" + v.name() + "' must be floating point, found " + v.type());
        }
        return t;
    }
}
