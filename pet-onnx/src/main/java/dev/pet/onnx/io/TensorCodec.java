package dev.pet.onnx.io;

import com.google.protobuf.ByteString;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.util.function.Function;

/** Tensor data in {@code TensorProto}: raw little-endian bytes, typed fields on read, external data via a resolver. */
final class TensorCodec {
    private TensorCodec() {
    }

    static TensorProto.Builder header(String name, Tensor t) {
        TensorProto.Builder b = TensorProto.newBuilder().setDataType(t.dataType().onnxCode());
        if (!name.isEmpty()) {
            b.setName(name);
        }
        for (long d : t.shape()) {
            b.addDims(d);
        }
        return b;
    }

    static TensorProto inline(OnnxSerializer.NamedTensor nt) {
        Tensor t = nt.tensor();
        if (t.byteSize() > OnnxSerializer.PROTOBUF_LIMIT) {
            throw new OnnxException("tensor '" + nt.name() + "' (" + t.byteSize() + " bytes) cannot be stored "
                    + "inline; write the model with external data");
        }
        TensorProto.Builder b = header(nt.name(), t);
        ByteBuffer buf = t.buffer();
        if (buf.isDirect() || !buf.hasArray()) {
            try {
                ByteArrayOutputStream out = new ByteArrayOutputStream((int) t.byteSize());
                t.data().writeTo(Channels.newChannel(out));
                b.setRawData(ByteString.copyFrom(out.toByteArray()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        } else {
            b.setRawData(ByteString.copyFrom(buf));
        }
        return b.build();
    }

    static Tensor fromProto(TensorProto tp, Function<TensorProto, Tensor> external) {
        String name = tp.getName();
        DataType dt = dataType(tp.getDataType(), name.isEmpty() ? "<tensor>" : name);
        long[] shape = tp.getDimsList().stream().mapToLong(Long::longValue).toArray();
        long count;
        try {
            count = Tensor.checkedElementCount(shape);
            Math.max(1, dt.bytesFor(count));
        } catch (ArithmeticException | OnnxException e) {
            throw new OnnxException("tensor '" + name + "' has an invalid shape " + tp.getDimsList());
        }
        if (tp.hasSegment()) {
            throw new OnnxException("tensor '" + name + "' is segmented, which is not supported");
        }
        if (tp.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
            Tensor t = external.apply(tp);
            if (t.dataType() != dt || !java.util.Arrays.equals(t.shape(), shape)) {
                throw new OnnxException("tensor '" + name + "': external data does not match its declared type");
            }
            return t;
        }
        if (tp.hasRawData()) {
            ByteString raw = tp.getRawData();
            long expected = dt.bytesFor(count);
            if (raw.size() != expected) {
                throw new OnnxException("tensor '" + name + "' of " + dt + java.util.Arrays.toString(shape)
                        + " needs " + expected + " bytes of raw_data but has " + raw.size());
            }
            ByteBuffer bb = raw.asReadOnlyByteBuffer();
            return Tensor.of(dt, shape, bb.order(ByteOrder.LITTLE_ENDIAN));
        }
        return fromTypedFields(tp, dt, shape, count);
    }

    private static Tensor fromTypedFields(TensorProto tp, DataType dt, long[] shape, long count) {
        String name = tp.getName();
        int available = switch (dt) {
            case FLOAT -> tp.getFloatDataCount();
            case DOUBLE -> tp.getDoubleDataCount();
            case INT64 -> tp.getInt64DataCount();
            case UINT32, UINT64 -> tp.getUint64DataCount();
            default -> tp.getInt32DataCount();
        };
        if (available != count) {
            throw new OnnxException("tensor '" + name + "' of " + dt + java.util.Arrays.toString(shape)
                    + " needs " + count + " values but has " + available);
        }
        int n = (int) count;
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(n, dt.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            switch (dt) {
                case FLOAT -> b.putFloat(tp.getFloatData(i));
                case DOUBLE -> b.putDouble(tp.getDoubleData(i));
                case INT64 -> b.putLong(tp.getInt64Data(i));
                case UINT64 -> b.putLong(tp.getUint64Data(i));
                case UINT32 -> b.putInt((int) tp.getUint64Data(i));
                case INT32 -> b.putInt(tp.getInt32Data(i));
                case INT16, UINT16, FLOAT16, BFLOAT16 -> b.putShort((short) tp.getInt32Data(i));
                case INT8, UINT8, BOOL -> b.put((byte) tp.getInt32Data(i));
                default -> throw new OnnxException("tensor '" + name + "': cannot decode " + dt);
            }
        }
        return Tensor.of(dt, shape, b.flip());
    }

    static DataType dataType(int code, String name) {
        try {
            return DataType.fromOnnx(code);
        } catch (OnnxException e) {
            throw new OnnxException("'" + name + "': " + e.getMessage(), e);
        }
    }
}
