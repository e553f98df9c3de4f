package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.QuantizedLinears;
import java.util.ArrayList;
import java.util.List;

/**
 * ONNX Runtime's {@code com.microsoft.MatMulNBits} over a frozen quantized weight: {@code Y = A · Wᵀ} gives
 * {@code dA = dY · W}, another MatMulNBits over the weight's transposed quantized copy (see
 * {@link QuantizedLinears}). The weight itself is frozen, so it gets no gradient.
 */
final class QuantizedGradients {
    private QuantizedGradients() {
    }

    static void register(GradientRegistry r) {
        r.register(QuantizedLinears.DOMAIN, QuantizedLinears.OP, QuantizedGradients::matMulNBits);
    }

    private static void matMulNBits(Node n, GradientContext c) {
        for (int i = 1; i < n.inputCount(); i++) {
            if (n.input(i) != null && c.needs(n.input(i))) {
                throw new OnnxException(n.describe() + ": input " + i + " ('" + n.input(i).name() + "') is on the "
                        + "gradient path, but quantized weights are frozen");
            }
        }
        Value a = n.input(0);
        c.propagate(a, () -> {
            List<Value> inputs = new ArrayList<>();
            inputs.add(c.grad(n, 0));
            inputs.addAll(QuantizedLinears.backwardInputs(n));
            Value da = c.builder().node(QuantizedLinears.OP, QuantizedLinears.DOMAIN, inputs, 1,
                    QuantizedLinears.backwardAttributes(n)).output(0);
            da.setType(a.type());
            return da;
        });
    }
}
