package dev.pet.onnx.tensor;

import dev.pet.onnx.OnnxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * An immutable n-dimensional array: element type, shape and little-endian row-major bytes. The bytes are shared
 * with whoever supplied them (a direct buffer, a mapped file), never copied on construction.
 */
public final class Tensor {
    private final DataType dataType;
    private final long[] shape;
    private final TensorData data;

    public Tensor(DataType dataType, long[] shape, TensorData data) {
        this.dataType = Objects.requireNonNull(dataType, "dataType");
        this.shape = shape.clone();
        this.data = Objects.requireNonNull(data, "data");
        if (dataType == DataType.STRING) {
            throw new OnnxException("string tensors are not supported");
        }
        long n = checkedElementCount(this.shape);
        long expected = dataType.bytesFor(n);
        if (expected != data.byteSize()) {
            throw new OnnxException("tensor of " + dataType + Arrays.toString(this.shape) + " needs " + expected
                    + " bytes but has " + data.byteSize());
        }
    }

    public static long checkedElementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new OnnxException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public DataType dataType() {
        return dataType;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis < 0 ? axis + shape.length : axis];
    }

    public long elementCount() {
        return checkedElementCount(shape);
    }

    public long byteSize() {
        return data.byteSize();
    }

    public TensorData data() {
        return data;
    }

    /** A read-only little-endian view of the bytes, positioned at 0. */
    public ByteBuffer buffer() {
        return data.asByteBuffer();
    }

    /** The same bytes under another shape with the same element count. */
    public Tensor reshape(long... newShape) {
        if (checkedElementCount(newShape) != elementCount()) {
            throw new OnnxException("cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
        }
        return new Tensor(dataType, newShape, data);
    }

    // ---- factories ----------------------------------------------------------------------------------------

    public static Tensor of(DataType type, long[] shape, ByteBuffer littleEndianBytes) {
        return new Tensor(type, shape, new BufferData(littleEndianBytes));
    }

    public static Tensor zeros(DataType type, long... shape) {
        long bytes = type.bytesFor(checkedElementCount(shape));
        return new Tensor(type, shape, bytes > (1L << 26) ? new ZeroData(bytes)
                : new BufferData(ByteBuffer.allocate((int) bytes)));
    }

    public static Tensor ofFloats(float[] values, long... shape) {
        ByteBuffer b = allocate(values.length, 4);
        b.asFloatBuffer().put(values);
        return of(DataType.FLOAT, shape, b);
    }

    public static Tensor ofDoubles(double[] values, long... shape) {
        ByteBuffer b = allocate(values.length, 8);
        b.asDoubleBuffer().put(values);
        return of(DataType.DOUBLE, shape, b);
    }

    public static Tensor ofLongs(long[] values, long... shape) {
        ByteBuffer b = allocate(values.length, 8);
        b.asLongBuffer().put(values);
        return of(DataType.INT64, shape, b);
    }

    public static Tensor ofInts(int[] values, long... shape) {
        ByteBuffer b = allocate(values.length, 4);
        b.asIntBuffer().put(values);
        return of(DataType.INT32, shape, b);
    }

    public static Tensor ofBools(boolean[] values, long... shape) {
        ByteBuffer b = allocate(values.length, 1);
        for (boolean v : values) {
            b.put((byte) (v ? 1 : 0));
        }
        return of(DataType.BOOL, shape, b.flip());
    }

    public static Tensor scalar(float v) {
        return ofFloats(new float[] {v});
    }

    public static Tensor scalar(double v) {
        return ofDoubles(new double[] {v});
    }

    public static Tensor scalar(long v) {
        return ofLongs(new long[] {v});
    }

    /** Values of any floating-point or integer type converted to the given floating type. */
    public static Tensor fromDoubles(DataType type, double[] values, long... shape) {
        ByteBuffer b = allocate(values.length, type.byteSize());
        for (double v : values) {
            switch (type) {
                case FLOAT -> b.putFloat((float) v);
                case DOUBLE -> b.putDouble(v);
                case FLOAT16 -> b.putShort(Half.floatToFp16((float) v));
                case BFLOAT16 -> b.putShort(Half.floatToBf16((float) v));
                case INT64 -> b.putLong((long) v);
                case INT32, UINT32 -> b.putInt((int) v);
                case INT16, UINT16 -> b.putShort((short) v);
                case UINT64 -> b.putLong((long) v);
                case INT8, UINT8 -> b.put((byte) v);
                case BOOL -> b.put((byte) (v != 0 ? 1 : 0));
                default -> throw new OnnxException("cannot build a " + type + " tensor from doubles");
            }
        }
        return of(type, shape, b.flip());
    }

    private static ByteBuffer allocate(int count, int width) {
        return ByteBuffer.allocate(Math.multiplyExact(count, width)).order(ByteOrder.LITTLE_ENDIAN);
    }

    // ---- reading values ----------------------------------------------------------------------------------

    /** Every element as a double, whatever the element type. */
    public double[] toDoubleArray() {
        ByteBuffer b = buffer();
        int n = Math.toIntExact(elementCount());
        double[] out = new double[n];
        if (dataType.isPacked()) {
            for (int i = 0; i < n; i++) {
                int nibble = (Byte.toUnsignedInt(b.get(i / 2)) >>> ((i & 1) * 4)) & 0x0F;
                out[i] = dataType == DataType.INT4 && nibble >= 8 ? nibble - 16 : nibble;
            }
            return out;
        }
        for (int i = 0; i < n; i++) {
            out[i] = switch (dataType) {
                case FLOAT -> b.getFloat();
                case DOUBLE -> b.getDouble();
                case FLOAT16 -> Half.fp16ToFloat(b.getShort());
                case BFLOAT16 -> Half.bf16ToFloat(b.getShort());
                case INT64 -> b.getLong();
                case UINT64 -> unsignedLongToDouble(b.getLong());
                case INT32 -> b.getInt();
                case UINT32 -> Integer.toUnsignedLong(b.getInt());
                case INT16 -> b.getShort();
                case UINT16 -> Short.toUnsignedInt(b.getShort());
                case INT8, BOOL -> b.get();
                case UINT8 -> Byte.toUnsignedInt(b.get());
                case STRING, UINT4, INT4 -> throw new IllegalStateException();
            };
        }
        return out;
    }

    /**
     * Index of the first NaN or infinite element, or -1 when every element is finite (always -1 for integer types).
     * Nothing is copied and file regions are read from the file in chunks (not through a mapping), so it suits
     * multi-gigabyte weights, including tensors above 2 GiB.
     */
    public long firstNonFinite() {
        if (!dataType.isFloatingPoint() || data instanceof ZeroData) {
            return -1;
        }
        long[] index = {0};
        // Bulk-copies each chunk into a primitive array and checks it in one branch-free pass (a vectorised
        // OR), element by element only where a chunk holds a non-finite value: GPT-2 small's 0.5 GB scan took
        // 0.7 s of start-up element by element (docs/BENCHMARKS.md, "Time to first step").
        FiniteScan scan = FiniteScan.of(dataType);
        Predicate<ByteBuffer> allFinite = chunk -> {
            while (chunk.remaining() >= dataType.byteSize()) {
                index[0] += scan.finitePrefix(chunk);
                if (chunk.remaining() >= dataType.byteSize() && scan.isNonFiniteAt(chunk)) {
                    return false;
                }
            }
            return true;
        };
        boolean finite = data instanceof FileData fd ? fd.readChunks(dataType.byteSize(), allFinite)
                : allFinite.test(buffer());
        return finite ? -1 : index[0];
    }

    /**
     * Finds runs of finite values in little-endian chunks of one floating type: IEEE values are non-finite exactly
     * when every exponent bit is set, i.e. when the magnitude bits, read as an integer, are at least those of
     * infinity.
     */
    private static final class FiniteScan {
        private static final int BLOCK = 1 << 16;
        /** Reused by every scan on a thread: fresh arrays per tensor cost page faults (see FileData.readChunks). */
        private static final ThreadLocal<int[]> INTS = ThreadLocal.withInitial(() -> new int[BLOCK]);
        private static final ThreadLocal<long[]> LONGS = ThreadLocal.withInitial(() -> new long[BLOCK]);
        private static final ThreadLocal<short[]> SHORTS = ThreadLocal.withInitial(() -> new short[BLOCK]);
        private final DataType type;
        private final int[] ints;
        private final long[] longs;
        private final short[] shorts;

        private FiniteScan(DataType type, int[] ints, long[] longs, short[] shorts) {
            this.type = type;
            this.ints = ints;
            this.longs = longs;
            this.shorts = shorts;
        }

        static FiniteScan of(DataType type) {
            return switch (type) {
                case FLOAT -> new FiniteScan(type, INTS.get(), null, null);
                case DOUBLE -> new FiniteScan(type, null, LONGS.get(), null);
                case FLOAT16, BFLOAT16 -> new FiniteScan(type, null, null, SHORTS.get());
                default -> throw new IllegalStateException(type.toString());
            };
        }

        /**
         * Consumes the longest run of finite elements at the chunk's position, up to one block, and returns its
         * length; the position is left at the first non-finite element, if any.
         */
        int finitePrefix(ByteBuffer chunk) {
            int n = Math.min(BLOCK, chunk.remaining() / type.byteSize());
            ByteBuffer le = chunk.slice().order(ByteOrder.LITTLE_ENDIAN);
            // Adding the lowest exponent bit to the exponent bits carries into the sign bit exactly when they are
            // all set; OR-ing the sums is a reduction C2 vectorises.
            boolean finite = switch (type) {
                case FLOAT -> {
                    le.asIntBuffer().get(ints, 0, n);
                    int acc = 0;
                    for (int i = 0; i < n; i++) {
                        acc |= (ints[i] & 0x7F800000) + 0x00800000;
                    }
                    yield acc >= 0;
                }
                case DOUBLE -> {
                    le.asLongBuffer().get(longs, 0, n);
                    long acc = 0;
                    for (int i = 0; i < n; i++) {
                        acc |= (longs[i] & 0x7FF0000000000000L) + 0x0010000000000000L;
                    }
                    yield acc >= 0;
                }
                case FLOAT16, BFLOAT16 -> {
                    le.asShortBuffer().get(shorts, 0, n);
                    int mask = type == DataType.FLOAT16 ? 0x7C00 : 0x7F80;
                    int low = mask & -mask;
                    int acc = 0;
                    for (int i = 0; i < n; i++) {
                        acc |= (shorts[i] & mask) + low;
                    }
                    yield (acc & 0x8000) == 0;
                }
                default -> throw new IllegalStateException(type.toString());
            };
            if (finite) {
                chunk.position(chunk.position() + n * type.byteSize());
                return n;
            }
            int run = 0;
            while (run < n && !isNonFiniteAt(chunk)) {
                chunk.position(chunk.position() + type.byteSize());
                run++;
            }
            return run;
        }

        /** Whether the element at the chunk's position is non-finite (the position does not move). */
        boolean isNonFiniteAt(ByteBuffer chunk) {
            int p = chunk.position();
            ByteBuffer le = chunk.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            return switch (type) {
                case FLOAT -> (le.getInt(p) & 0x7F800000) == 0x7F800000;
                case DOUBLE -> (le.getLong(p) & 0x7FF0000000000000L) == 0x7FF0000000000000L;
                case FLOAT16 -> (le.getShort(p) & 0x7C00) == 0x7C00;
                case BFLOAT16 -> (le.getShort(p) & 0x7F80) == 0x7F80;
                default -> throw new IllegalStateException(type.toString());
            };
        }
    }

    private static double unsignedLongToDouble(long v) {
        double d = (double) (v >>> 1) * 2.0;
        return d + (v & 1);
    }

    public float[] toFloatArray() {
        if (dataType == DataType.FLOAT) {
            float[] out = new float[Math.toIntExact(elementCount())];
            buffer().asFloatBuffer().get(out);
            return out;
        }
        double[] d = toDoubleArray();
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    public long[] toLongArray() {
        if (dataType == DataType.INT64) {
            long[] out = new long[Math.toIntExact(elementCount())];
            buffer().asLongBuffer().get(out);
            return out;
        }
        if (dataType.isFloatingPoint()) {
            throw new OnnxException("tensor of " + dataType + " is not integer-valued");
        }
        double[] d = toDoubleArray();
        long[] out = new long[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (long) d[i];
        }
        return out;
    }

    /** This tensor's values converted to another floating-point or integer type. */
    public Tensor castTo(DataType type) {
        if (type == dataType) {
            return this;
        }
        if (type == DataType.FLOAT && dataType.isFloatingPoint()) {
            return toFloat32();
        }
        return fromDoubles(type, toDoubleArray(), shape);
    }

    /**
     * Widening to float32 element by element into one direct buffer: no double[] in between (checkpoints hold
     * half-precision tensors of hundreds of megabytes) and ONNX Runtime wraps the result without another copy.
     */
    private Tensor toFloat32() {
        long bytes = Math.multiplyExact(elementCount(), 4L);
        if (bytes > Integer.MAX_VALUE) {
            throw new OnnxException("tensor " + this + " is " + bytes + " bytes as FLOAT, above the 2 GiB a single "
                    + "buffer can hold");
        }
        ByteBuffer src = buffer();
        ByteBuffer dst = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) (bytes / 4);
        switch (dataType) {
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    dst.putFloat(Half.fp16ToFloat(src.getShort()));
                }
            }
            case BFLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    dst.putFloat(Half.bf16ToFloat(src.getShort()));
                }
            }
            case DOUBLE -> {
                for (int i = 0; i < n; i++) {
                    dst.putFloat((float) src.getDouble());
                }
            }
            default -> throw new IllegalStateException("not a widening to FLOAT: " + dataType);
        }
        return of(DataType.FLOAT, shape, dst.flip());
    }

    /** A heap copy of the bytes, detached from files or shared buffers. */
    public Tensor copy() {
        ByteBuffer src = buffer();
        ByteBuffer dst = ByteBuffer.allocate(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        dst.put(src).flip();
        return of(dataType, shape, dst);
    }

    @Override
    public String toString() {
        return "Tensor(" + dataType + Arrays.toString(shape) + ")";
    }
}
