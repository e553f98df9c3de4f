package dev.pet.hf.testing;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.Tensor;
import java.util.List;
import java.util.function.Function;

/**
 * What the families' test builders of {@code torch.onnx}-shaped exports share: constants as {@code Constant} nodes (as
 * the exporter writes them), dimensions read with {@code Shape}+{@code Gather}, and weights as initializers under
 * their state-dict names, each added once.
 */
public abstract class TorchStyleGraph {
    protected final Graph g;
    protected final GraphBuilder b;
    private final Function<String, Tensor> weights;

    /**
     * @param graphName the exporter's graph name
     * @param weights   state-dict name to tensor
     */
    protected TorchStyleGraph(String graphName, int opset, Function<String, Tensor> weights) {
        this.g = new Graph(graphName);
        this.b = new GraphBuilder(g, opset);
        this.weights = weights;
    }

    protected Value k(Tensor t) {
        return b.node("Constant", "", List.of(), 1, Attribute.of("value", t)).output(0);
    }

    protected Value k(float v) {
        return k(Tensor.scalar(v));
    }

    protected Value ks(long... v) {
        return k(Tensor.ofLongs(v, v.length));
    }

    /** The weight as an initializer under its state-dict name. */
    protected Value param(String name) {
        Value existing = g.value(name);
        return existing != null ? existing : b.initializer(name, weights.apply(name));
    }

    /** {@code x.shape[axis]} as a scalar. */
    protected Value dim(Value x, long axis) {
        return b.op("Gather", List.of(b.shape(x), k(Tensor.scalar(axis))), Attribute.of("axis", 0L));
    }

    /** A scalar as a 1-element vector. */
    protected Value unsq(Value scalar) {
        return b.op("Unsqueeze", List.of(scalar, ks(0)));
    }
}
