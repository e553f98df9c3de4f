package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles a training step into one standard-ONNX model: the forward graph with its loss, the backward pass for the
 * trainable tensors only ({@link Autodiff}), global-norm clipping and the optimizer update. Trainable initializers
 * become state inputs; every other initializer stays a constant.
 */
public final class TrainStepBuilder {
    /** Learning rate, float scalar, fed every step (schedules are computed by the caller). */
    public static final String LR = "lr";
    /** 1-based optimizer step as a float scalar (bias correction). */
    public static final String STEP = "step";
    /** int64 scalar seeding dropout masks; present only when the graph has dropout. */
    public static final String DROPOUT_SEED = "dropout_seed";
    /** bool scalar: apply the accumulated gradient now; present only with gradient accumulation. */
    public static final String APPLY = "apply";
    public static final String GRAD_NORM = "grad_norm";

    private TrainStepBuilder() {
    }

    /** Name of the output holding the next value of state input {@code state}. */
    public static String next(String state) {
        return state + ".next";
    }

    /** Name of the gradients graph's output, and the apply graph's feed, holding the gradient of {@code trainable}. */
    public static String gradient(String trainable) {
        return "grad/" + trainable;
    }

    /** The train step, keeping every forward value its backward pass reads ({@link Recompute#NONE}). */
    public static TrainStepModel build(Model forward, String loss, List<String> trainables, OptimizerSpec spec) {
        return build(forward, loss, trainables, spec, Recompute.NONE);
    }

    /** The train step, recomputing in the backward pass what {@code recompute} says. */
    public static TrainStepModel build(Model forward, String loss, List<String> trainables, OptimizerSpec spec,
            Recompute recompute) {
        Backward bw = backward(forward, loss, trainables, recompute);
        Graph g = bw.model.graph();
        GraphBuilder b = new GraphBuilder(g, (int) bw.model.opset());
        b.setScope("optim");
        List<String> feeds = new ArrayList<>(bw.feeds);
        Map<String, Tensor> initial = new LinkedHashMap<>(bw.initial);
        Map<String, String> bindings = appendOptimizer(b, spec, bw.params, bw.grads, initial, feeds);
        forgetBackwardShapes(g, bw.forwardNodes);
        return new TrainStepModel(bw.model, feeds, bindings, initial, trainables);
    }

    /**
     * Compiles the step split in two for data parallelism: a gradients graph (the loss and the gradient of every
     * trainable for one micro-batch, trainables read as plain inputs) and an apply graph (accumulation, clipping and
     * the optimizer update of the state, fed gradients that replicas have averaged). Run in turn with the same
     * feeds, they compute what {@link #build} does; the apply graph's state has the same names as the fused step's.
     */
    public static SplitTrainStep buildSplit(Model forward, String loss, List<String> trainables,
            OptimizerSpec spec, Recompute recompute) {
        Backward bw = backward(forward, loss, trainables, recompute);
        Graph g = bw.model.graph();
        GraphBuilder b = new GraphBuilder(g, (int) bw.model.opset());
        b.setScope("grad");
        for (Value p : bw.params) {
            output(b, cast(b, bw.grads.get(p.name()), p), gradient(p.name()));
        }
        forgetBackwardShapes(g, bw.forwardNodes);

        Graph ag = new Graph("apply_step");
        Model apply = new Model(ag, bw.model.opset());
        GraphBuilder ab = new GraphBuilder(ag, (int) bw.model.opset());
        ab.setScope("optim");
        List<Value> params = new ArrayList<>();
        Map<String, Value> grads = new LinkedHashMap<>();
        List<String> feeds = new ArrayList<>();
        for (Value p : bw.params) {
            Tensor init = bw.initial.get(p.name());
            TensorType type = TensorType.of(init.dataType(), init.shape());
            params.add(ab.input(p.name(), type));
            grads.put(p.name(), ab.input(gradient(p.name()), type));
            feeds.add(gradient(p.name()));
        }
        Map<String, Tensor> initial = new LinkedHashMap<>(bw.initial);
        Map<String, String> bindings = appendOptimizer(ab, spec, params, grads, initial, feeds);
        return new SplitTrainStep(bw.model, bw.feeds, new TrainStepModel(apply, feeds, bindings, initial,
                trainables));
    }

    /** The forward copy with trainables as inputs and the backward pass appended. */
    private record Backward(Model model, List<String> feeds, Map<String, Tensor> initial, List<Value> params,
            Map<String, Value> grads, Set<Node> forwardNodes) {
    }

    /**
     * Drops the shapes (keeping element types) of the values the nodes after the forward pass compute, except graph
     * outputs: the serialised graph then gives ONNX Runtime no shape for them beyond what its own inference proves.
     * Its allocation planner hands a value the buffer of an earlier, dead value when it can prove both the same size,
     * and that buffer then stays allocated from the earlier value's birth to the later value's death: a recomputed
     * block's or loss chunk's tensors would pin the buffers of their forward twins through the whole backward pass
     * (Llama-3.2-1B, 4 bits, recomputed blocks: 575 MiB of arena in use at the peak instead of 208, peak RSS 2.52
     * against 2.29 GiB; docs/BENCHMARKS.md, "ONNX Runtime's buffer reuse"). The step's own graph passes are done by
     * now; nothing after this reads those shapes.
     */
    private static void forgetBackwardShapes(Graph g, Set<Node> forwardNodes) {
        Set<Value> outputs = new HashSet<>(g.outputs());
        for (Node n : g.nodes()) {
            if (forwardNodes.contains(n)) {
                continue;
            }
            for (Value o : n.outputs()) {
                if (o != null && !outputs.contains(o) && o.type().hasRank()) {
                    o.setType(new TensorType(o.type().dataType(), null));
                }
            }
        }
    }

    private static Backward backward(Model forward, String loss, List<String> trainables, Recompute recompute) {
        if (trainables.isEmpty()) {
            throw new OnnxException("nothing to train: no trainable tensors were declared");
        }
        Model model = forward.copy();
        Graph g = model.graph();
        int opset = (int) model.opset();
        GraphBuilder b = new GraphBuilder(g, opset);
        b.setScope("optim");
        Value lossValue = g.requireValue(loss);
        List<String> feeds = new ArrayList<>();
        for (Value in : g.inputs()) {
            if (g.initializer(in.name()) == null) { // an input with a default (an empty cache) needs no feed
                feeds.add(in.name());
            }
        }
        Map<String, Tensor> initial = new LinkedHashMap<>();
        List<Value> params = new ArrayList<>();
        for (String name : trainables) {
            Tensor t = g.initializer(name);
            if (t == null) {
                throw new OnnxException("trainable tensor '" + name + "' is not an initializer of the model");
            }
            if (t.dataType() != DataType.FLOAT && t.dataType() != DataType.DOUBLE) {
                throw new OnnxException("trainable tensor '" + name + "' is " + t.dataType()
                        + "; training needs float32 or float64");
            }
            g.promoteInitializerToInput(name);
            initial.put(name, t);
            params.add(g.requireValue(name));
        }
        if (g.nodes().stream().anyMatch(n -> n.opType().equals("Dropout"))) {
            Value seed = b.input(DROPOUT_SEED, TensorType.of(DataType.INT64));
            if (SeededDropout.rewrite(g, seed, opset) == 0) {
                g.removeInput(seed);
            } else {
                feeds.add(DROPOUT_SEED);
            }
        }
        Set<Node> forwardNodes = new HashSet<>(g.nodes());
        Map<String, Value> grads = Autodiff.differentiate(g, opset, lossValue, params, recompute).byName();
        return new Backward(model, feeds, initial, params, grads, forwardNodes);
    }

    /**
     * Appends accumulation, the gradient norm, clipping and the update of every parameter to {@code b}'s graph, adding
     * the scalar inputs to {@code feeds} and the optimizer state to {@code initial}; returns the state bindings.
     */
    private static Map<String, String> appendOptimizer(GraphBuilder b, OptimizerSpec spec, List<Value> params,
            Map<String, Value> grads, Map<String, Tensor> initial, List<String> feeds) {
        Graph g = b.graph();
        Value lr = b.input(LR, TensorType.of(DataType.FLOAT));
        Value step = b.input(STEP, TensorType.of(DataType.FLOAT));
        feeds.add(LR);
        feeds.add(STEP);
        Value apply = null;
        Map<String, String> bindings = new LinkedHashMap<>();
        Map<String, Tensor> optState = new LinkedHashMap<>();
        // Gradient accumulation: acc' = acc + g; the update uses acc' when `apply`, else keeps parameters.
        Map<String, Value> effective = new LinkedHashMap<>();
        Map<String, Value> accNext = new LinkedHashMap<>();
        if (spec.accumulation() > 1) {
            apply = b.input(APPLY, TensorType.of(DataType.BOOL));
            feeds.add(APPLY);
            for (Value p : params) {
                String accName = "acc/" + p.name();
                Tensor zeros = Tensor.zeros(initial.get(p.name()).dataType(), initial.get(p.name()).shape());
                Value acc = b.input(accName, TensorType.of(zeros.dataType(), zeros.shape()));
                Value sum = b.add(acc, cast(b, grads.get(p.name()), p));
                Value mean = b.div(sum, b.constant(elem(p), spec.accumulation()));
                effective.put(p.name(), mean);
                accNext.put(accName, b.where(apply, b.mul(sum, b.constant(elem(p), 0)), sum));
                optState.put(accName, zeros);
            }
        } else {
            for (Value p : params) {
                effective.put(p.name(), cast(b, grads.get(p.name()), p));
            }
        }

        // Global gradient norm (reported before clipping, as torch's clip_grad_norm_ returns it).
        List<Value> squares = new ArrayList<>();
        for (Value p : params) {
            Value gEff = effective.get(p.name());
            Value gf = elem(p) == DataType.FLOAT ? gEff : b.cast(gEff, DataType.FLOAT);
            squares.add(b.reduceSum(b.mul(gf, gf), new long[0], false));
        }
        Value norm = b.sqrt(b.sum(squares));
        b.output(b.identity(norm), GRAD_NORM);
        Value clip = null;
        if (spec.maxGradNorm() > 0) {
            Value coef = b.div(b.constant((float) spec.maxGradNorm()), b.add(norm, b.constant(1e-6f)));
            clip = b.min(coef, b.constant(1f));
        }

        for (Value p : params) {
            Value grad = effective.get(p.name());
            if (clip != null) {
                grad = b.mul(grad, elem(p) == DataType.FLOAT ? clip : b.cast(clip, elem(p)));
            }
            Tensor init = initial.get(p.name());
            Updates u = update(b, spec, p, grad, init, lr, step, optState);
            Value newParam = u.param;
            if (apply != null) {
                newParam = b.where(apply, newParam, p);
                for (Map.Entry<String, Value> e : u.state.entrySet()) {
                    e.setValue(b.where(apply, e.getValue(), g.requireValue(e.getKey())));
                }
            }
            bindings.put(p.name(), output(b, newParam, next(p.name())));
            for (Map.Entry<String, Value> e : u.state.entrySet()) {
                bindings.put(e.getKey(), output(b, e.getValue(), next(e.getKey())));
            }
        }
        for (Map.Entry<String, Value> e : accNext.entrySet()) {
            bindings.put(e.getKey(), output(b, e.getValue(), next(e.getKey())));
        }
        initial.putAll(optState);
        return bindings;
    }

    private record Updates(Value param, Map<String, Value> state) {
    }

    private static Updates update(GraphBuilder b, OptimizerSpec spec, Value p, Value g, Tensor init, Value lr,
            Value step, Map<String, Tensor> optState) {
        DataType dt = elem(p);
        Value lrT = dt == DataType.FLOAT ? lr : b.cast(lr, dt);
        boolean decay = spec.weightDecay() > 0 && !spec.noDecay().test(p.name());
        Map<String, Value> state = new LinkedHashMap<>();
        switch (spec.kind()) {
            case ADAMW, ADAM_WEIGHT_DECAY -> {
                Value m = stateInput(b, "m/" + p.name(), init, optState);
                Value v = stateInput(b, "v/" + p.name(), init, optState);
                Value m2 = b.add(b.mul(m, b.constant(dt, spec.beta1())), b.mul(g, b.constant(dt, 1 - spec.beta1())));
                Value v2 = b.add(b.mul(v, b.constant(dt, spec.beta2())),
                        b.mul(b.mul(g, g), b.constant(dt, 1 - spec.beta2())));
                state.put(m.name(), m2);
                state.put(v.name(), v2);
                Value newP;
                if (spec.kind() == OptimizerSpec.Kind.ADAMW) {
                    Value base = decay ? b.mul(p, b.sub(b.constant(dt, 1), b.mul(lrT, b.constant(dt,
                            spec.weightDecay())))) : p;
                    // Bias corrections in float64: 1 - 0.999^t in float32 is off by 1e-5 relative (0.999 has no
                    // exact float32 form), which torch avoids by computing them in Python floats.
                    Value t64 = b.cast(step, DataType.DOUBLE);
                    Value bc1 = castTo(b, b.sub(b.constant(DataType.DOUBLE, 1),
                            b.pow(b.constant(DataType.DOUBLE, spec.beta1()), t64)), dt);
                    Value bc2 = castTo(b, b.sub(b.constant(DataType.DOUBLE, 1),
                            b.pow(b.constant(DataType.DOUBLE, spec.beta2()), t64)), dt);
                    Value denom = b.add(b.div(b.sqrt(v2), b.sqrt(bc2)), b.constant(dt, spec.eps()));
                    newP = b.sub(base, b.mul(b.div(lrT, bc1), b.div(m2, denom)));
                } else {
                    Value upd = b.div(m2, b.add(b.sqrt(v2), b.constant(dt, spec.eps())));
                    if (decay) {
                        upd = b.add(upd, b.mul(p, b.constant(dt, spec.weightDecay())));
                    }
                    newP = b.sub(p, b.mul(lrT, upd));
                }
                return new Updates(newP, state);
            }
            case SGD -> {
                Value d = decay ? b.add(g, b.mul(p, b.constant(dt, spec.weightDecay()))) : g;
                if (spec.beta1() > 0) {
                    Value buf = stateInput(b, "momentum/" + p.name(), init, optState);
                    Value buf2 = b.add(b.mul(buf, b.constant(dt, spec.beta1())), d);
                    state.put(buf.name(), buf2);
                    d = spec.nesterov() ? b.add(d, b.mul(buf2, b.constant(dt, spec.beta1()))) : buf2;
                }
                return new Updates(b.sub(p, b.mul(lrT, d)), state);
            }
            default -> throw new IllegalStateException(spec.kind().toString());
        }
    }

    private static Value stateInput(GraphBuilder b, String name, Tensor like, Map<String, Tensor> optState) {
        Tensor zeros = Tensor.zeros(like.dataType(), like.shape());
        optState.put(name, zeros);
        return b.input(name, TensorType.of(zeros.dataType(), zeros.shape()));
    }

    private static Value castTo(GraphBuilder b, Value v, DataType dt) {
        return dt == DataType.DOUBLE ? v : b.cast(v, dt);
    }

    private static DataType elem(Value p) {
        return GraphBuilder.elementType(p);
    }

    private static Value cast(GraphBuilder b, Value grad, Value p) {
        DataType gt = grad.type().dataType();
        return gt == null || gt == elem(p) ? grad : b.cast(grad, elem(p));
    }

    private static String output(GraphBuilder b, Value v, String name) {
        return b.output(v.isGraphInput() || v.isInitializer() ? b.identity(v) : v, name).name();
    }
}
