package dev.pet.onnx.optim;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.Autodiff;
import dev.pet.onnx.autodiff.Gradients;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Builds train-step, accumulation, apply and eval graphs (see {@link TrainGraphs}) from a forward model whose
 * loss is computed in the graph (e.g. by {@link CausalLmLoss}).
 */
public final class TrainStepGraph {
    public static final String LOSS = "loss";
    public static final String STEP = "step";
    public static final String LR = "lr";
    public static final String GRAD_NORM = "grad_norm";
    /** Prefix of updated-value outputs: {@code updated.<input name>}. */
    public static final String UPDATED = "updated.";
    /** Prefix of state inputs: {@code optimizer.<slot>.<trainable>}. */
    public static final String STATE = "optimizer.";
    /** Prefix of gradient accumulators: {@code grad_accum.<trainable>}. */
    public static final String ACCUMULATOR = "grad_accum.";

    private TrainStepGraph() {
    }

    /**
     * Builds the graphs.
     *
     * @param forward    a model with the loss among its values; not modified
     * @param loss       name of the scalar loss value
     * @param trainables names of initializers to train; every other initializer stays frozen
     * @param options    optimizer settings
     */
    public static TrainGraphs build(Model forward, String loss, List<String> trainables, OptimizerOptions options) {
        Objects.requireNonNull(forward, "forward");
        Objects.requireNonNull(loss, "loss");
        Objects.requireNonNull(options, "options");
        if (trainables.isEmpty()) {
            throw new OnnxException("no trainable tensors given");
        }
        Optimizer opt = Optimizers.create(options);
        int opset = (int) forward.opset();
        List<String> batch = new ArrayList<>();
        for (Value in : forward.graph().inputs()) {
            if (!trainables.contains(in.name())) {
                batch.add(in.name());
            }
        }
        Map<String, Tensor> initial = new LinkedHashMap<>();
        for (String t : trainables) {
            Tensor init = forward.graph().initializer(t);
            if (init == null) {
                throw new OnnxException("trainable '" + t + "' is not an initializer of the forward graph");
            }
            initial.put(t, init);
        }
        List<String> stateNames = new ArrayList<>();
        for (String t : trainables) {
            for (String slot : opt.stateSlots()) {
                stateNames.add(STATE + slot + "." + t);
            }
        }
        Map<String, String> updated = new LinkedHashMap<>();
        trainables.forEach(t -> updated.put(t, UPDATED + t));
        stateNames.forEach(s -> updated.put(s, UPDATED + s));

        Model eval = forward.copy();
        Value evalLoss = eval.graph().requireValue(loss);
        eval.graph().clearOutputs();
        new GraphBuilder(eval.graph(), opset).output(evalLoss, LOSS);
        eval.graph().removeUnused();

        if (options.accumulationSteps() == 1) {
            Model step = forward.copy();
            Graph g = step.graph();
            List<Value> params = promote(g, trainables);
            GraphBuilder b = new GraphBuilder(g, opset);
            Value lossValue = g.requireValue(loss);
            g.clearOutputs();
            b.output(lossValue, LOSS);
            Gradients grads = Autodiff.differentiate(g, opset, lossValue, params);
            List<Value> gv = new ArrayList<>();
            params.forEach(p -> gv.add(grads.get(p)));
            applyUpdates(b, opt, options, params, gv);
            g.removeUnused();
            return new TrainGraphs(step, null, null, eval, batch, trainables, stateNames, List.of(), updated,
                    initial);
        }

        List<String> accumulators = new ArrayList<>();
        trainables.forEach(t -> accumulators.add(ACCUMULATOR + t));
        accumulators.forEach(a -> updated.put(a, UPDATED + a));

        Model acc = forward.copy();
        Graph ag = acc.graph();
        List<Value> params = promote(ag, trainables);
        GraphBuilder ab = new GraphBuilder(ag, opset);
        Value lossValue = ag.requireValue(loss);
        ag.clearOutputs();
        ab.output(lossValue, LOSS);
        Gradients grads = Autodiff.differentiate(ag, opset, lossValue, params);
        for (Value p : params) {
            Value sum = ab.input(ACCUMULATOR + p.name(), p.type());
            ab.output(ab.add(sum, grads.get(p)), UPDATED + ACCUMULATOR + p.name());
        }
        ag.removeUnused();

        Graph pg = new Graph("apply");
        GraphBuilder pb = new GraphBuilder(pg, opset);
        List<Value> pParams = new ArrayList<>();
        List<Value> pGrads = new ArrayList<>();
        for (Value p : params) {
            pParams.add(pb.input(p.name(), p.type()));
        }
        for (Value p : pParams) {
            Value sum = pb.input(ACCUMULATOR + p.name(), p.type());
            pGrads.add(pb.mul(sum, pb.constant(GraphBuilder.elementType(p), 1.0 / options.accumulationSteps())));
        }
        applyUpdates(pb, opt, options, pParams, pGrads);
        Model apply = new Model(pg, opset);
        apply.opsets().clear();
        apply.opsets().putAll(forward.opsets());
        return new TrainGraphs(null, acc, apply, eval, batch, trainables, stateNames, accumulators, updated,
                initial);
    }

    private static List<Value> promote(Graph g, List<String> trainables) {
        List<Value> params = new ArrayList<>();
        for (String t : trainables) {
            g.promoteInitializerToInput(t);
            Value v = g.requireValue(t);
            Optimizers.checkFloat(v);
            params.add(v);
        }
        return params;
    }

    /** Adds step/lr inputs, the gradient norm, clipping and each parameter's update with its outputs. */
    private static void applyUpdates(GraphBuilder b, Optimizer opt, OptimizerOptions o, List<Value> params,
            List<Value> grads) {
        Value stepIn = b.input(STEP, TensorType.of(DataType.INT64));
        Value lrIn = b.input(LR, TensorType.of(DataType.FLOAT));
        DataType t = GraphBuilder.elementType(params.get(0));
        List<Value> squares = new ArrayList<>();
        for (Value g : grads) {
            Value s = b.op("ReduceSumSquare", List.of(g), Attribute.of("keepdims", 0L));
            squares.add(GraphBuilder.elementType(g) == DataType.DOUBLE ? s : b.cast(s, DataType.DOUBLE));
        }
        Value norm = b.sqrt(b.sum(squares));
        b.output(t == DataType.DOUBLE ? norm : b.cast(norm, DataType.FLOAT), GRAD_NORM);
        List<Value> clipped = grads;
        if (o.maxGradNorm() > 0) {
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
            Value coef = b.min(b.constant(DataType.DOUBLE, 1.0),
                    b.div(b.constant(DataType.DOUBLE, o.maxGradNorm()), b.add(norm, b.constant(DataType.DOUBLE,
                            1e-6))));
            clipped = new ArrayList<>();
            for (Value g : grads) {
                DataType gt = GraphBuilder.elementType(g);
                clipped.add(b.mul(g, gt == DataType.DOUBLE ? coef : b.cast(coef, gt)));
            }
        }
        Map<DataType, Value[]> scalars = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            Value p = params.get(i);
            DataType pt = GraphBuilder.elementType(p);
            Value[] ls = scalars.computeIfAbsent(pt, k -> new Value[] {
                k == DataType.FLOAT ? lrIn : b.cast(lrIn, k), b.cast(stepIn, k)});
            List<Value> state = new ArrayList<>();
            for (String slot : opt.stateSlots()) {
                state.add(b.input(STATE + slot + "." + p.name(), p.type()));
            }
            Optimizer.Update u = opt.update(b, p, clipped.get(i), state, ls[0], ls[1], o.decays(p.name()));
            b.output(u.param(), UPDATED + p.name());
            for (int s = 0; s < state.size(); s++) {
                b.output(u.state().get(s), UPDATED + state.get(s).name());
            }
        }
    }
}
