package dev.pet.onnx.autodiff;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.quant.IntegerLinears;
import dev.pet.onnx.quant.QuantizedLinears;
import java.util.ArrayList;
import java.util.List;

/**
 * Frozen quantized weights (see {@link QuantizedLinears}); the weights get no gradient.
 * <ul>
 *   <li>ONNX Runtime's {@code com.microsoft.MatMulNBits}: {@code Y = A · Wᵀ} gives {@code dA = dY · W}, another
 *       MatMulNBits over the weight's transposed quantized copy.</li>
 *   <li>Kernel matmul_integer's {@code dev.pet.DynamicInt8MatMul(A, B, s)} = {@code A · B·diag(s)} gives
 *       {@code dA = (dY·diag(s)) · Bᵀ}, another DynamicInt8MatMul over the transposed codes with a unit scale.</li>
 *   <li>Kernel dequantize: the linear rules multiply by a DequantizeLinear output; {@link #dequantizedAgain}
 *       gives them a second DequantizeLinear of the same stored bytes, so the float weight of the forward pass dies
 *       right after its Gemm instead of staying alive (one float copy per layer) until the backward pass.</li>
 * </ul>
 */
final class QuantizedGradients {
    private QuantizedGradients() {
    }

    static void register(GradientRegistry r) {
        r.register(QuantizedLinears.DOMAIN, QuantizedLinears.OP, QuantizedGradients::matMulNBits);
        r.register(IntegerLinears.DOMAIN, IntegerLinears.OP, QuantizedGradients::dynamicInt8MatMul);
    }

    /**
     * {@code w}, or when it is the output of a DequantizeLinear of initializers (a frozen quantized weight), the
     * same dequantization computed anew in the backward pass. The copy spells its axis negatively: same meaning,
     * but ONNX Runtime's common-subexpression elimination (which merges nodes with equal inputs and attributes)
     * would otherwise fold it back into the forward node and keep that output alive across the step.
     */
    static Value dequantizedAgain(Value w, GradientContext c) {
        Node p = w.producer();
        if (p == null || !p.opType().equals(QuantizedLinears.DEQUANTIZE_OP)
                || !(p.domain().isEmpty() || p.domain().equals("ai.onnx")) || !w.type().hasRank()) {
            return w;
        }
        for (Value in : p.inputs()) {
            if (in != null && (p.graph().initializer(in.name()) == null || c.needs(in))) {
                return w;
            }
        }
        int rank = w.type().rank();
        long axis = p.intAttr("axis", 1);
        long otherSpelling = axis < 0 ? axis + rank : axis - rank;
        List<Attribute> attrs = new ArrayList<>();
        attrs.add(Attribute.of("axis", otherSpelling));
        p.attributes().values().stream().filter(a -> !a.name().equals("axis")).forEach(attrs::add);
        Value again = c.builder().node(p.opType(), "", p.inputs(), 1, attrs.toArray(Attribute[]::new)).output(0);
        again.setType(w.type());
        return again;
    }

    private static void requireFrozenWeight(Node n, GradientContext c) {
        for (int i = 1; i < n.inputCount(); i++) {
            if (n.input(i) != null && c.needs(n.input(i))) {
                throw new OnnxException(n.describe() + ": input " + i + " ('" + n.input(i).name() + "') is on the "
                        + "gradient path, but quantized weights are frozen");
            }
        }
    }

    private static void dynamicInt8MatMul(Node n, GradientContext c) {
        requireFrozenWeight(n, c);
        Value a = n.input(0);
        c.propagate(a, () -> {
            Value scaled = c.builder().mul(c.grad(n, 0), n.input(2));
            Value da = c.builder().node(IntegerLinears.OP, IntegerLinears.DOMAIN,
                    IntegerLinears.backwardInputs(n, scaled), 1).output(0);
            da.setType(a.type());
            return da;
        });
    }

    private static void matMulNBits(Node n, GradientContext c) {
        requireFrozenWeight(n, c);
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
