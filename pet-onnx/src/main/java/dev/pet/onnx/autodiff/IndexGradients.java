package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.List;

/**
 * Gather and GatherElements (data input only; indices carry no gradient). Repeated indices accumulate through
 * ScatterND / ScatterElements with {@code reduction="add"} into zeros: for an embedding table [V, E] read at
 * [B, S] positions this costs one zero fill of the table and B·S row additions, where a one-hot MatMul would cost
 * 2·V·B·S·E flops. Both scatter ops take negative indices counting from the end, like Gather, so the indices
 * are used unchanged.
 */
final class IndexGradients {
    private IndexGradients() {
    }

    static void register(GradientRegistry r) {
        r.register("Gather", IndexGradients::gather);
        r.register("GatherElements", IndexGradients::gatherElements);
    }

    private static void requireOpset16(Node n, GradientContext c) {
        if (c.opset() < 16) {
            throw new OnnxException("the gradient of " + n.describe() + " needs opset 16 or later (scatter with"
                    + " reduction), the graph is built for opset " + c.opset());
        }
    }

    private static void gather(Node n, GradientContext c) {
        Value data = n.input(0);
        c.propagate(data, () -> {
            requireOpset16(n, c);
            GraphBuilder b = c.builder();
            Value g = c.grad(n, 0);
            int rd = GradientContext.rank(data);
            int ri = GradientContext.rank(n.input(1));
            int a = GradientContext.axis(n.intAttr("axis", 0), rd);
            Value idx = b.unsqueeze(n.input(1), -1); // negative indices count from the end, as in Gather
            DataType t = GradientContext.floatType(data);
            if (a == 0) {
                return b.op("ScatterND", List.of(c.zeros(data), idx, g), Attribute.of("reduction", "add"));
            }
            // Move the gathered axis to the front, scatter rows, move it back.
            long[] gPerm = new long[rd - 1 + ri];
            int k = 0;
            for (int i = 0; i < ri; i++) {
                gPerm[k++] = a + i;
            }
            for (int i = 0; i < a; i++) {
                gPerm[k++] = i;
            }
            for (int i = a + ri; i < gPerm.length; i++) {
                gPerm[k++] = i;
            }
            long[] dataPerm = new long[rd];
            dataPerm[0] = a;
            for (int i = 0; i < a; i++) {
                dataPerm[i + 1] = i;
            }
            for (int i = a + 1; i < rd; i++) {
                dataPerm[i] = i;
            }
            long[] inverse = new long[rd];
            for (int i = 0; i < rd; i++) {
                inverse[(int) dataPerm[i]] = i;
            }
            Value permutedShape;
            if (data.type().isStatic()) {
                long[] s = data.type().shape();
                long[] p = new long[rd];
                for (int i = 0; i < rd; i++) {
                    p[i] = s[(int) dataPerm[i]];
                }
                permutedShape = c.ints(p);
            } else {
                permutedShape = b.gather(c.shapeOf(data), c.ints(dataPerm), 0);
            }
            Value scattered = b.op("ScatterND", List.of(c.zeros(permutedShape, t), idx, b.transpose(g, gPerm)),
                    Attribute.of("reduction", "add"));
            return b.transpose(scattered, inverse);
        });
    }

    private static void gatherElements(Node n, GradientContext c) {
        Value data = n.input(0);
        // Kept sparse: the consumer of the data's gradient adds it into its own dense gradient or uses it directly.
        c.propagateScatter(data, n.input(1), GradientContext.axis(n.intAttr("axis", 0), GradientContext.rank(data)),
                () -> {
                    requireOpset16(n, c);
                    return c.grad(n, 0);
                });
    }
}
