package dev.pet.hf;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;

/** Graph pieces every causal-LM family builds the same way. */
public final class CausalAttention {
    private CausalAttention() {
    }

    /** The most negative finite value of a float type, used as the additive bias of masked keys. */
    public static double maskValue(DataType t) {
        return t == DataType.DOUBLE ? -Double.MAX_VALUE : -Float.MAX_VALUE;
    }

    /**
     * Additive attention bias [1 or batch, 1, sequence, total]: 0 where a query may attend a key, the most negative
     * finite value where the key lies in its future or is padding ({@code mask} 0; null when the graph has no
     * mask). The sum of both is clamped at that value so it stays finite (a row of -inf would make softmax NaN).
     *
     * @param queryPos positions of the new tokens [sequence] (past .. past+sequence)
     * @param keyPos   positions of all keys [total] (0 .. past+sequence)
     */
    public static Value bias(GraphBuilder b, Value mask, Value queryPos, Value keyPos, DataType dt) {
        Value min = b.constant(dt, maskValue(dt));
        Value future = b.greater(b.unsqueeze(keyPos, 0), b.unsqueeze(queryPos, 1));
        Value causal = b.unsqueeze(b.where(future, min, b.constant(dt, 0.0)), 0, 1);
        if (mask == null) {
            return causal;
        }
        Value keep = b.cast(mask, dt);
        Value padding = b.unsqueeze(b.mul(b.sub(b.constant(dt, 1.0), keep), min), 1, 2);
        return b.max(b.add(causal, padding), min);
    }
}
