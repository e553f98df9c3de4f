package dev.pet.engine;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.onnx.tensor.ZeroData;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * Conversions between {@link Tensor} and ONNX Runtime's {@link OnnxTensor}. A tensor whose bytes are already in a
 * direct buffer (a memory-mapped file, an engine-owned buffer) is wrapped without a copy; heap bytes are copied once
 * into a new direct buffer. ONNX Runtime reads native byte order, so this class requires a little-endian platform.
 */
public final class OrtTensors {
    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("PET Runtime's engine needs a little-endian platform");
        }
    }

    private OrtTensors() {
    }

    /** ORT's element type for ours; fails for types ORT's Java API cannot wrap from a buffer. */
    public static OnnxJavaType javaType(DataType type) {
        return switch (type) {
            case FLOAT -> OnnxJavaType.FLOAT;
            case DOUBLE -> OnnxJavaType.DOUBLE;
            case INT8 -> OnnxJavaType.INT8;
            case UINT8 -> OnnxJavaType.UINT8;
            case INT16 -> OnnxJavaType.INT16;
            case INT32 -> OnnxJavaType.INT32;
            case INT64 -> OnnxJavaType.INT64;
            case BOOL -> OnnxJavaType.BOOL;
            case FLOAT16 -> OnnxJavaType.FLOAT16;
            case BFLOAT16 -> OnnxJavaType.BFLOAT16;
            default -> throw new EngineException("ONNX Runtime's Java API cannot exchange " + type + " tensors");
        };
    }

    /** Our element type for ORT's tensor type. */
    public static DataType dataType(TensorInfo.OnnxTensorType type) {
        return switch (type) {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT -> DataType.FLOAT;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE -> DataType.DOUBLE;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 -> DataType.INT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 -> DataType.UINT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16 -> DataType.INT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16 -> DataType.UINT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 -> DataType.INT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32 -> DataType.UINT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 -> DataType.INT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64 -> DataType.UINT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL -> DataType.BOOL;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 -> DataType.FLOAT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 -> DataType.BFLOAT16;
            default -> throw new EngineException("unsupported ONNX Runtime tensor type " + type);
        };
    }

    /**
     * The tensor's bytes as a direct little-endian buffer positioned at 0: the tensor's own buffer when it is
     * already direct (no copy), otherwise a fresh copy.
     */
    public static ByteBuffer directBytes(Tensor t) {
        Objects.requireNonNull(t, "t");
        if (t.byteSize() > Integer.MAX_VALUE) {
            throw new EngineException("tensor " + t + " has " + t.byteSize() + " bytes; ONNX Runtime's Java API "
                    + "takes at most 2 GiB per tensor buffer");
        }
        if (t.data() instanceof ZeroData) {
            return ByteBuffer.allocateDirect((int) t.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        }
        ByteBuffer b = t.buffer();
        if (b.isDirect()) {
            return b;
        }
        ByteBuffer copy = ByteBuffer.allocateDirect(b.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(b).flip();
        return copy;
    }

    /**
     * An ORT tensor over the tensor's bytes, zero-copy when they are direct. The caller closes it; the bytes must
     * stay reachable and unchanged while ORT may read them (the returned tensor holds a reference).
     */
    public static OnnxTensor wrap(OrtEnvironment env, Tensor t) {
        return wrapBuffer(env, directBytes(t), t.dataType(), t.shape());
    }

    /** An ORT tensor over a direct buffer of exactly {@code shape}'s bytes; ORT reads and writes it in place. */
    static OnnxTensor wrapBuffer(OrtEnvironment env, ByteBuffer direct, DataType type, long[] shape) {
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("buffer must be direct");
        }
        long expected = Tensor.checkedElementCount(shape) * type.byteSize();
        if (direct.remaining() != expected) {
            throw new EngineException(type + Arrays.toString(shape) + " needs " + expected + " bytes, buffer has "
                    + direct.remaining());
        }
        try {
            return OnnxTensor.createTensor(env, direct, shape, javaType(type));
        } catch (OrtException e) {
            throw new EngineException("cannot create an ONNX Runtime tensor of " + type + Arrays.toString(shape)
                    + ": " + e.getMessage(), e);
        }
    }

    /** A heap copy of an ORT tensor's values. */
    public static Tensor toTensor(OnnxTensor t) {
        TensorInfo info = t.getInfo();
        DataType type = dataType(info.onnxType);
        ByteBuffer bytes = t.getByteBuffer();
        if (bytes == null) {
            throw new EngineException("ONNX Runtime tensor " + info + " has no readable buffer");
        }
        ByteBuffer heap = ByteBuffer.allocate(bytes.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        heap.put(bytes.order(ByteOrder.LITTLE_ENDIAN)).flip();
        return Tensor.of(type, info.getShape(), heap);
    }
}
