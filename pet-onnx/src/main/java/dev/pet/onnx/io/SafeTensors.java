package dev.pet.onnx.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.BufferData;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.onnx.tensor.TensorData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes {@code .safetensors} files: an 8-byte little-endian header length, a JSON header mapping tensor
 * names to dtype, shape and data offsets (plus an optional {@code __metadata__} string map), then the data. Reading
 * memory-maps each tensor's region, so tensors are views, never heap copies, and files of any size load (a tensor
 * above 2 GiB stays a file region, streamed when written). A Hugging Face model directory, single-file or sharded,
 * is read by {@link CheckpointTensors}. Every header field is checked: length cap (100 MB),
 * offsets in bounds, matching dtype × shape, tensors covering the data section exactly without overlap or gaps,
 * no duplicate names. Writing pads the header with spaces to a multiple of 8 bytes and renames a temporary file into
 * place.
 */
public final class SafeTensors {
    private static final long MAX_HEADER = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(8).build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build());

    private SafeTensors() {
    }

    /** The tensors of a file, in file order, and its metadata. */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {
    }

    /** The tensors of a file, in file order. */
    public static Map<String, Tensor> read(Path file) {
        return readWithMetadata(file).tensors();
    }

    public static Contents readWithMetadata(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new OnnxException(file + ": " + size + " bytes is too short for a safetensors file");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen < 2 || headerLen > MAX_HEADER || headerLen > size - 8) {
                throw new OnnxException(file + ": header length " + headerLen + " is invalid for a file of " + size
                        + " bytes (limit " + MAX_HEADER + ")");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(ch, header, 8);
            JsonNode root;
            try {
                root = JSON.readTree(new String(header.array(), StandardCharsets.UTF_8));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new OnnxException(file + ": header is not valid JSON (" + e.getOriginalMessage() + ")", e);
            }
            if (root == null || !root.isObject()) {
                throw new OnnxException(file + ": header is not a JSON object");
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            List<long[]> ranges = new ArrayList<>();
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> en : root.properties()) {
                String name = en.getKey();
                if (name.equals("__metadata__")) {
                    if (!en.getValue().isObject()) {
                        throw new OnnxException(file + ": __metadata__ must be an object of strings");
                    }
                    for (Map.Entry<String, JsonNode> m : en.getValue().properties()) {
                        if (!m.getValue().isTextual()) {
                            throw new OnnxException(file + ": __metadata__ value of '" + m.getKey()
                                    + "' must be a string");
                        }
                        metadata.put(m.getKey(), m.getValue().asText());
                    }
                    continue;
                }
                JsonNode t = en.getValue();
                if (!t.isObject()) {
                    throw new OnnxException(file + ": entry '" + name + "' must be an object");
                }
                DataType dt = dtype(file, name, t.path("dtype").asText(""));
                JsonNode shapeNode = t.path("shape");
                JsonNode offs = t.path("data_offsets");
                if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
                    throw new OnnxException(file + ": tensor '" + name + "' needs 'shape' and two 'data_offsets'");
                }
                long[] shape = new long[shapeNode.size()];
                for (int i = 0; i < shape.length; i++) {
                    JsonNode d = shapeNode.get(i);
                    if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                        throw new OnnxException(file + ": tensor '" + name + "' has an invalid dimension " + d);
                    }
                    shape[i] = d.asLong();
                }
                long begin = offs.get(0).isIntegralNumber() && offs.get(0).canConvertToLong() ? offs.get(0).asLong() : -1;
                long end = offs.get(1).isIntegralNumber() && offs.get(1).canConvertToLong() ? offs.get(1).asLong() : -1;
                long need;
                try {
                    need = Math.multiplyExact(Tensor.checkedElementCount(shape), (long) dt.byteSize());
                } catch (ArithmeticException e) {
                    throw new OnnxException(file + ": tensor '" + name + "' has a shape too large to address");
                }
                if (begin < 0 || end < begin || end > dataLen || end - begin != need) {
                    throw new OnnxException(file + ": tensor '" + name + "' has data_offsets [" + begin + ", " + end
                            + "], expected " + need + " bytes inside the " + dataLen + "-byte data section");
                }
                ranges.add(new long[] {begin, end});
                out.put(name, new Tensor(dt, shape, map(ch, file, dataStart + begin, need)));
            }
            ranges.sort((a, b) -> Long.compare(a[0], b[0]));
            long covered = 0;
            for (long[] range : ranges) {
                if (range[0] < covered) {
                    throw new OnnxException(file + ": tensors overlap at byte " + range[0] + " of the data section");
                }
                if (range[0] > covered) {
                    throw new OnnxException(file + ": bytes " + covered + ".." + range[0]
                            + " of the data section belong to no tensor");
                }
                covered = range[1];
            }
            if (covered != dataLen) {
                throw new OnnxException(file + ": the data section has " + dataLen + " bytes but the tensors cover "
                        + covered);
            }
            return new Contents(java.util.Collections.unmodifiableMap(out), java.util.Collections.unmodifiableMap(metadata));
        } catch (IOException e) {
            throw new OnnxException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new OnnxException(file + ": invalid safetensors file (" + e.getMessage() + ")", e);
        }
    }

    /**
     * One mapping per tensor, so neither the file nor the data section is limited to one 2 GiB buffer. A tensor
     * above 2 GiB cannot be one buffer either; it stays a file region that is streamed when written.
     */
    private static TensorData map(FileChannel ch, Path file, long offset, long length) throws IOException {
        if (length == 0) {
            return new BufferData(ByteBuffer.allocate(0));
        }
        if (length > Integer.MAX_VALUE) {
            return new FileData(file, offset, length);
        }
        return new BufferData(ch.map(FileChannel.MapMode.READ_ONLY, offset, length));
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos + b.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static DataType dtype(Path file, String name, String code) {
        return switch (code) {
            case "F32" -> DataType.FLOAT;
            case "F16" -> DataType.FLOAT16;
            case "BF16" -> DataType.BFLOAT16;
            case "F64" -> DataType.DOUBLE;
            case "I64" -> DataType.INT64;
            case "I32" -> DataType.INT32;
            case "I16" -> DataType.INT16;
            case "U8" -> DataType.UINT8;
            case "I8" -> DataType.INT8;
            case "BOOL" -> DataType.BOOL;
            default -> throw new OnnxException(file + ": tensor '" + name + "' has unsupported dtype '" + code
                    + "' (expected F32, F16, BF16, F64, I64, I32, U8, I8 or BOOL)");
        };
    }

    private static String code(DataType t) {
        return switch (t) {
            case FLOAT -> "F32";
            case FLOAT16 -> "F16";
            case BFLOAT16 -> "BF16";
            case DOUBLE -> "F64";
            case INT64 -> "I64";
            case INT32 -> "I32";
            case INT16 -> "I16";
            case UINT8 -> "U8";
            case INT8 -> "I8";
            case BOOL -> "BOOL";
            default -> throw new OnnxException("cannot write " + t + " tensors to safetensors");
        };
    }

    /** Writes tensors in map order to a temporary file beside {@code file}, then renames it into place. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> en : tensors.entrySet()) {
            Tensor t = en.getValue();
            ObjectNode n = header.putObject(en.getKey());
            n.put("dtype", code(t.dataType()));
            var shape = n.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            var offs = n.putArray("data_offsets");
            offs.add(offset);
            offset += t.byteSize();
            offs.add(offset);
        }
        byte[] headerBytes;
        try {
            headerBytes = JSON.writeValueAsBytes(header);
        } catch (IOException e) {
            throw new OnnxException("cannot encode safetensors header for " + file, e);
        }
        int padded = (headerBytes.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(headerBytes);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        try {
            AtomicFiles.write(file, ch -> {
                AtomicFiles.writeFully(ch, prefix);
                for (Tensor t : tensors.values()) {
                    t.data().writeTo(ch);
                }
            });
        } catch (IOException e) {
            throw new OnnxException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
