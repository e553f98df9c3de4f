package dev.pet.onnx.io;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;

/**
 * Reads and writes {@code .onnx} files, with external data: tensors whose bytes live in a side file named by
 * {@code location} (relative to the model's folder), {@code offset} and {@code length}. External data is memory-mapped
 * on read, never copied to the heap. Locations are untrusted: they must be relative, free of {@code ..}, and resolve
 * inside the model's folder; offsets and lengths must lie in the file and match dtype × shape. Writes go to temporary
 * files renamed into place, and a model whose inline size would pass the 2 GiB protobuf limit is written with
 * external data automatically.
 */
public final class OnnxFiles {
    /** Tensors at least this large go to external data when external data is used (ONNX's convention is 1 KiB). */
    public static final long DEFAULT_EXTERNAL_THRESHOLD = 1024;
    private static final int ALIGNMENT = 64;

    private OnnxFiles() {
    }

    /** Reads a model, resolving external data against the model file's folder. */
    public static Model read(Path file) {
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new OnnxException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (size > OnnxSerializer.PROTOBUF_LIMIT) {
            throw new OnnxException(file + " is " + size + " bytes; an .onnx protobuf cannot exceed 2 GiB (larger "
                    + "models keep their weights in external data)");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new OnnxException("cannot read " + file + ": " + e.getMessage(), e);
        }
        ModelProto proto = OnnxSerializer.parse(bytes, file.toString());
        Path folder = file.toAbsolutePath().normalize().getParent();
        try {
            return OnnxSerializer.fromProto(proto, t -> external(file, folder, t));
        } catch (OnnxException e) {
            if (e.getMessage() != null && e.getMessage().contains(file.toString())) {
                throw e;
            }
            throw new OnnxException(file + ": " + e.getMessage(), e);
        }
    }

    private static Tensor external(Path model, Path folder, TensorProto t) {
        String location = null;
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = parseLong(model, t, "offset", e.getValue());
                case "length" -> length = parseLong(model, t, "length", e.getValue());
                default -> { } // checksum and future keys are not needed to read the bytes
            }
        }
        String name = t.getName();
        if (location == null || location.isEmpty()) {
            throw new OnnxException(model + ": tensor '" + name + "' has external data without a location");
        }
        Path rel = Path.of(location);
        if (rel.isAbsolute() || location.startsWith("/") || location.startsWith("\\")
                || Arrays.stream(location.split("[/\\\\]")).anyMatch(".."::equals)) {
            throw new OnnxException(model + ": tensor '" + name + "' has external data location '" + location
                    + "', which must be a relative path inside the model's folder");
        }
        Path data = folder.resolve(rel).normalize();
        if (!data.startsWith(folder)) {
            throw new OnnxException(model + ": tensor '" + name + "' points outside the model's folder: " + location);
        }
        if (!Files.isRegularFile(data)) {
            throw new OnnxException(model + ": external data file '" + location + "' of tensor '" + name
                    + "' does not exist next to the model");
        }
        DataType dt = DataType.fromOnnx(t.getDataType());
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        long expected = dt.bytesFor(Tensor.checkedElementCount(shape));
        if (length < 0) {
            length = expected;
        }
        long fileSize;
        try {
            fileSize = Files.size(data);
        } catch (IOException e) {
            throw new OnnxException("cannot read " + data + ": " + e.getMessage(), e);
        }
        if (length != expected || offset < 0 || offset > fileSize || length > fileSize - offset) {
            throw new OnnxException(model + ": tensor '" + name + "' of " + dt + Arrays.toString(shape) + " needs "
                    + expected + " bytes at offset " + offset + " of '" + location + "' (" + fileSize
                    + " bytes), but the entry says length " + length);
        }
        return new Tensor(dt, shape, new FileData(data, offset, length));
    }

    private static long parseLong(Path model, TensorProto t, String key, String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new OnnxException(model + ": tensor '" + t.getName() + "' has a non-numeric external data "
                    + key + " '" + value + "'");
        }
    }

    /** Writes a model with every tensor inline, or with external data when it would not fit in 2 GiB. */
    public static void write(Model model, Path file) {
        long inline = 0;
        for (Tensor t : model.graph().initializers().values()) {
            inline += t.byteSize();
        }
        if (inline > OnnxSerializer.PROTOBUF_LIMIT - (64L << 20)) {
            writeWithExternalData(model, file, file.getFileName() + ".data", DEFAULT_EXTERNAL_THRESHOLD);
        } else {
            atomicWrite(file, OnnxSerializer.toBytes(model));
        }
    }

    /**
     * Writes a model whose initializers of at least {@code threshold} bytes go to {@code dataFileName} beside it,
     * each at a 64-byte-aligned offset. The tensors are streamed; the protobuf holds only references.
     */
    public static void writeWithExternalData(Model model, Path file, String dataFileName, long threshold) {
        if (Path.of(dataFileName).getNameCount() != 1 || dataFileName.contains("..")) {
            throw new OnnxException("external data file name must be a plain file name, found '" + dataFileName + "'");
        }
        Path folder = file.toAbsolutePath().getParent();
        Path data = folder.resolve(dataFileName);
        ModelProto[] built = new ModelProto[1];
        try {
            AtomicFiles.write(data, ch -> {
                long[] position = {0};
                built[0] = OnnxSerializer.toProto(model, nt -> {
                    Tensor t = nt.tensor();
                    if (t.byteSize() < threshold) {
                        return TensorCodec.inline(nt);
                    }
                    try {
                        long pad = (ALIGNMENT - position[0] % ALIGNMENT) % ALIGNMENT;
                        if (pad > 0) {
                            ch.write(ByteBuffer.allocate((int) pad));
                            position[0] += pad;
                        }
                        long start = position[0];
                        t.data().writeTo(ch);
                        position[0] += t.byteSize();
                        return TensorCodec.header(nt.name(), t)
                                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                                .addExternalData(entry("location", dataFileName))
                                .addExternalData(entry("offset", Long.toString(start)))
                                .addExternalData(entry("length", Long.toString(t.byteSize())))
                                .build();
                    } catch (IOException e) {
                        throw new OnnxException("cannot write " + data + ": " + e.getMessage(), e);
                    }
                });
            });
            ModelProto proto = built[0];
            long size = proto.getSerializedSize();
            if (size < 0 || size > OnnxSerializer.PROTOBUF_LIMIT) {
                throw new OnnxException("the graph of " + file + " is above 2 GiB even with external data; lower "
                        + "the external-data threshold");
            }
            AtomicFiles.write(file, proto.toByteArray());
        } catch (IOException e) {
            throw new OnnxException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static StringStringEntryProto entry(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    private static void atomicWrite(Path file, byte[] bytes) {
        try {
            AtomicFiles.write(file, bytes);
        } catch (IOException e) {
            throw new OnnxException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** The external-data entries of a tensor, for tests and tools. */
    static Map<String, String> externalEntries(TensorProto t) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        t.getExternalDataList().forEach(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }
}
