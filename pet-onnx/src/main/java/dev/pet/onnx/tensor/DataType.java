package dev.pet.onnx.tensor;

import dev.pet.onnx.OnnxException;

/** ONNX tensor element types, with their ONNX codes and sizes in bytes. */
public enum DataType {
    FLOAT(1, 4),
    UINT8(2, 1),
    INT8(3, 1),
    UINT16(4, 2),
    INT16(5, 2),
    INT32(6, 4),
    INT64(7, 8),
    STRING(8, -1),
    BOOL(9, 1),
    FLOAT16(10, 2),
    DOUBLE(11, 8),
    UINT32(12, 4),
    UINT64(13, 8),
    BFLOAT16(16, 2),
    /** 4-bit unsigned integers, two per byte, the even element in the low nibble (ONNX IR 10, opset 21). */
    UINT4(21, 0),
    /** 4-bit two's-complement integers, packed as {@link #UINT4}. */
    INT4(22, 0);

    private final int onnxCode;
    private final int byteSize;

    DataType(int onnxCode, int byteSize) {
        this.onnxCode = onnxCode;
        this.byteSize = byteSize;
    }

    /** True for the 4-bit types, whose elements share bytes (see {@link #bytesFor}). */
    public boolean isPacked() {
        return byteSize == 0;
    }

    /** Bytes holding {@code elements} values: two 4-bit values per byte, rounded up; -1 for strings. */
    public long bytesFor(long elements) {
        if (byteSize < 0) {
            return -1;
        }
        return isPacked() ? (elements + 1) / 2 : Math.multiplyExact(elements, (long) byteSize);
    }

    /** The {@code TensorProto.DataType} number. */
    public int onnxCode() {
        return onnxCode;
    }

    /**
     * Bytes per element; -1 for variable-length strings. The 4-bit types have no whole number of bytes per
     * element: asking is a programming error ({@link #bytesFor} sizes them).
     */
    public int byteSize() {
        if (isPacked()) {
            throw new UnsupportedOperationException(this + " packs two elements per byte: use bytesFor(count)");
        }
        return byteSize;
    }

    public boolean isFloatingPoint() {
        return this == FLOAT || this == DOUBLE || this == FLOAT16 || this == BFLOAT16;
    }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, INT32, INT64, UINT32, UINT64, UINT4, INT4 -> true;
            default -> false;
        };
    }

    public static DataType fromOnnx(int code) {
        for (DataType t : values()) {
            if (t.onnxCode == code) {
                return t;
            }
        }
        throw new OnnxException("unsupported ONNX tensor data type " + code
                + " (supported: FLOAT, DOUBLE, FLOAT16, BFLOAT16, INT64, INT32, INT16, INT8, UINT8, BOOL, ...)");
    }
}
