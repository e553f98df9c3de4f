package dev.pet.engine;

import com.google.protobuf.ByteString;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A model serialised for an ONNX Runtime session: a protobuf that holds the graph and the small constants, and the
 * large initializers kept out of it. Each large initializer appears in the protobuf with its name, type and shape,
 * {@code data_location = EXTERNAL} and a synthetic location ({@value #LOCATION_PREFIX}name); the session supplies its
 * bytes through {@code SessionOptions.addExternalInitializers}, so no protobuf ever nears the 2 GiB limit and the
 * weight bytes are never encoded.
 *
 * @param bytes    the serialised {@code ModelProto}
 * @param external the initializers left out of {@code bytes}, by name, in graph order
 */
public record SerializedModel(byte[] bytes, Map<String, Tensor> external) {
    /** Prefix of the synthetic external-data location; nothing is ever read from it. */
    public static final String LOCATION_PREFIX = "pet-memory://";

    public SerializedModel {
        Objects.requireNonNull(bytes, "bytes");
        external = Collections.unmodifiableMap(new LinkedHashMap<>(external));
    }

    /**
     * Serialises {@code model}, moving every initializer of at least {@code thresholdBytes} bytes out of the
     * protobuf.
     */
    public static SerializedModel of(Model model, long thresholdBytes) {
        Objects.requireNonNull(model, "model");
        Map<String, Tensor> external = new LinkedHashMap<>();
        ModelProto proto = OnnxSerializer.toProto(model, nt -> {
            Tensor t = nt.tensor();
            if (t.byteSize() >= thresholdBytes) {
                external.put(nt.name(), t);
                return externalReference(nt.name(), t);
            }
            return inline(nt.name(), t);
        });
        long size = proto.getSerializedSize();
        if (size < 0 || size > OnnxSerializer.PROTOBUF_LIMIT) {
            throw new OnnxException("model graph '" + model.graph().name() + "' is " + size
                    + " bytes even with its large initializers outside; the protobuf limit is 2 GiB");
        }
        return new SerializedModel(proto.toByteArray(), external);
    }

    private static TensorProto.Builder header(String name, Tensor t) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(t.dataType().onnxCode());
        for (long d : t.shape()) {
            b.addDims(d);
        }
        return b;
    }

    private static TensorProto externalReference(String name, Tensor t) {
        return header(name, t)
                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(entry("location", LOCATION_PREFIX + name))
                .addExternalData(entry("offset", "0"))
                .addExternalData(entry("length", Long.toString(t.byteSize())))
                .build();
    }

    private static StringStringEntryProto entry(String key, String value) {
        return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
    }

    private static TensorProto inline(String name, Tensor t) {
        ByteBuffer b = t.buffer();
        return header(name, t).setRawData(ByteString.copyFrom(b)).build();
    }
}
