package dev.pet.engine;

import com.google.protobuf.ByteString;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A model serialised for an ONNX Runtime session: a protobuf that holds the graph and the small constants, and the
 * large initializers kept out of it. Each large initializer appears in the protobuf with its name, type and shape and
 * {@code data_location = EXTERNAL}, so no protobuf ever nears the 2 GiB limit and the weight bytes are never encoded:
 * <ul>
 *   <li>an initializer whose bytes are a region of a file ({@link FileData}, e.g. a safetensors checkpoint) in
 *       {@link #dataFolder} refers to that file, offset and length, and ORT reads it from the file itself
 *       (session option {@value #FOLDER_OPTION}), so its pages never become resident in this process;</li>
 *   <li>any other large initializer gets a synthetic location ({@value #LOCATION_PREFIX}name) and the session
 *       supplies its bytes through {@code SessionOptions.addExternalInitializers}.</li>
 * </ul>
 * ORT resolves file references against one folder, so file regions elsewhere (rare: a checkpoint spread over
 * folders) take the second path.
 *
 * @param bytes      the serialised {@code ModelProto}
 * @param external   every initializer left out of {@code bytes}, by name, in graph order
 * @param fromFiles  the names in {@code external} that ORT reads from files in {@code dataFolder}
 * @param dataFolder the folder of those files, or null when there are none
 */
public record SerializedModel(byte[] bytes, Map<String, Tensor> external, Set<String> fromFiles, Path dataFolder) {
    /** Prefix of the synthetic external-data location; nothing is ever read from it. */
    public static final String LOCATION_PREFIX = "pet-memory://";
    /** ORT's session option naming the folder of external-data files when a model is created from bytes. */
    public static final String FOLDER_OPTION = "session.model_external_initializers_file_folder_path";

    public SerializedModel {
        Objects.requireNonNull(bytes, "bytes");
        external = Collections.unmodifiableMap(new LinkedHashMap<>(external));
        fromFiles = Collections.unmodifiableSet(new LinkedHashSet<>(fromFiles));
        if (!fromFiles.isEmpty() && dataFolder == null) {
            throw new IllegalArgumentException("initializers read from files need their folder");
        }
    }

    /** The initializers whose bytes the session must be handed (those not read from files). */
    public Map<String, Tensor> inMemory() {
        Map<String, Tensor> m = new LinkedHashMap<>(external);
        m.keySet().removeAll(fromFiles);
        return m;
    }

    /**
     * Serialises {@code model}, moving every initializer of at least {@code thresholdBytes} bytes out of the
     * protobuf.
     */
    public static SerializedModel of(Model model, long thresholdBytes) {
        Objects.requireNonNull(model, "model");
        model = withoutUnreadInitializers(model);
        Path folder = folderWithMostBytes(model, thresholdBytes);
        Map<String, Tensor> external = new LinkedHashMap<>();
        Set<String> fromFiles = new LinkedHashSet<>();
        ModelProto proto = OnnxSerializer.toProto(model, nt -> {
            Tensor t = nt.tensor();
            boolean fromFolder = folder != null && !nt.name().isEmpty() && t.data() instanceof FileData fd
                    && folder.equals(parent(fd));
            // ORT's Java API cannot wrap 4-bit tensors for addExternalInitializers: unless ORT reads them from a
            // file, they travel inside the protobuf.
            if (t.byteSize() < thresholdBytes || t.dataType().isPacked() && !fromFolder) {
                return inline(nt.name(), t);
            }
            external.put(nt.name(), t);
            if (fromFolder) {
                FileData fd = (FileData) t.data();
                fromFiles.add(nt.name());
                return externalReference(nt.name(), t, fd.file().getFileName().toString(), fd.offset());
            }
            return externalReference(nt.name(), t, LOCATION_PREFIX + nt.name(), 0);
        });
        long size = proto.getSerializedSize();
        if (size < 0 || size > OnnxSerializer.PROTOBUF_LIMIT) {
            throw new OnnxException("model graph '" + model.graph().name() + "' is " + size
                    + " bytes even with its large initializers outside; the protobuf limit is 2 GiB");
        }
        return new SerializedModel(proto.toByteArray(), external, fromFiles, fromFiles.isEmpty() ? null : folder);
    }

    /**
     * {@code model}, or a copy without the initializers nothing reads (a transposed quantized copy whose input
     * gradient autodiff did not need): ONNX Runtime drops those while loading and then refuses them as external
     * initializers.
     */
    private static Model withoutUnreadInitializers(Model model) {
        var g = model.graph();
        List<String> unread = g.initializers().keySet().stream().filter(name -> {
            var v = g.value(name);
            return v != null && v.uses().isEmpty() && !v.isGraphOutput() && !v.isGraphInput();
        }).toList();
        if (unread.isEmpty()) {
            return model;
        }
        Model copy = model.copy();
        unread.forEach(copy.graph()::dropInitializer);
        return copy;
    }

    private static Path folderWithMostBytes(Model model, long thresholdBytes) {
        Map<Path, Long> bytes = new HashMap<>();
        for (Tensor t : model.graph().initializers().values()) {
            if (t.byteSize() >= thresholdBytes && t.data() instanceof FileData fd) {
                bytes.merge(parent(fd), t.byteSize(), Long::sum);
            }
        }
        return bytes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(null);
    }

    private static Path parent(FileData fd) {
        return fd.file().toAbsolutePath().normalize().getParent();
    }

    private static TensorProto.Builder header(String name, Tensor t) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(t.dataType().onnxCode());
        for (long d : t.shape()) {
            b.addDims(d);
        }
        return b;
    }

    private static TensorProto externalReference(String name, Tensor t, String location, long offset) {
        return header(name, t)
                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(entry("location", location))
                .addExternalData(entry("offset", Long.toString(offset)))
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
