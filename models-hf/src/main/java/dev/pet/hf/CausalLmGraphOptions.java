package dev.pet.hf;

import dev.pet.api.PetException;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.tensor.DataType;
import java.util.Objects;

/**
 * Which optional inputs and outputs a causal-LM graph has, and its float type. Names follow Hugging Face Optimum
 * ({@link CausalLmNames}), so one generator drives every model family.
 *
 * @param dataType      FLOAT or DOUBLE (double is for gradient checks)
 * @param attentionMask add the {@code attention_mask} input [batch, past+sequence] (1 = attend, 0 = padding)
 * @param positionIds   add the {@code position_ids} input [batch, sequence]; without it positions are
 *                      past, past+1, ...
 * @param kvCache       which key/value cache tensors exist
 * @param opset         ONNX operator set of the default domain
 */
public record CausalLmGraphOptions(DataType dataType, boolean attentionMask, boolean positionIds, KvCache kvCache,
        int opset) {

    /** The key/value cache tensors of a graph (Hugging Face Optimum naming). */
    public enum KvCache {
        /** Neither {@code past_key_values.*} inputs nor {@code present.*} outputs (training graphs). */
        NONE,
        /** {@code present.{i}.key/value} outputs only (the first step of generation). */
        PRESENT,
        /** {@code past_key_values.{i}.key/value} inputs and {@code present.{i}.key/value} outputs. */
        PAST_AND_PRESENT
    }

    public CausalLmGraphOptions {
        Objects.requireNonNull(dataType, "dataType");
        Objects.requireNonNull(kvCache, "kvCache");
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new PetException("causal-LM graph: dataType expected FLOAT or DOUBLE, found " + dataType);
        }
    }

    /**
     * Float32, {@code attention_mask}, no position ids, no cache: the base of training graphs, at
     * {@link GraphBuilder#TRAINING_OPSET} (a single Gelu node, whose gradient needs only its input).
     */
    public static CausalLmGraphOptions training() {
        return new CausalLmGraphOptions(DataType.FLOAT, true, false, KvCache.NONE, GraphBuilder.TRAINING_OPSET);
    }

    /** Float32 with every input and the full cache: what generation runs. */
    public static CausalLmGraphOptions inference() {
        return new CausalLmGraphOptions(DataType.FLOAT, true, true, KvCache.PAST_AND_PRESENT,
                GraphBuilder.DEFAULT_OPSET);
    }

    public CausalLmGraphOptions withDataType(DataType t) {
        return new CausalLmGraphOptions(t, attentionMask, positionIds, kvCache, opset);
    }

    public CausalLmGraphOptions withAttentionMask(boolean on) {
        return new CausalLmGraphOptions(dataType, on, positionIds, kvCache, opset);
    }

    public CausalLmGraphOptions withPositionIds(boolean on) {
        return new CausalLmGraphOptions(dataType, attentionMask, on, kvCache, opset);
    }

    public CausalLmGraphOptions withKvCache(KvCache k) {
        return new CausalLmGraphOptions(dataType, attentionMask, positionIds, k, opset);
    }
}
