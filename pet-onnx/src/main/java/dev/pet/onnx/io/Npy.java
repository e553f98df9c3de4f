package dev.pet.onnx.io;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
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
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files (format versions 1–3): a magic string, a version, a header length and a Python-literal
 * dict {@code {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }}, then C-order data. Reading memory-maps
 * the data; the header is parsed strictly (size-limited, known keys only) and the data size must match.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int MAX_HEADER = 1 << 16;
    private static final Pattern HEADER = Pattern.compile(
            "\\{\\s*'descr'\\s*:\\s*'([^']*)'\\s*,\\s*'fortran_order'\\s*:\\s*(True|False)\\s*,"
                    + "\\s*'shape'\\s*:\\s*\\(([^)]*)\\)\\s*,?\\s*}\\s*");

    private Npy() {
    }

    public static Tensor read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer pre = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            while (pre.hasRemaining() && ch.read(pre) > 0) {
                // fill
            }
            pre.flip();
            if (pre.remaining() < 10) {
                throw new OnnxException(file + ": too short for a .npy file");
            }
            byte[] magic = new byte[6];
            pre.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw new OnnxException(file + ": not a .npy file (bad magic)");
            }
            int major = pre.get() & 0xff;
            pre.get();
            long headerLen;
            int prefix;
            if (major == 1) {
                headerLen = pre.getShort() & 0xffff;
                prefix = 10;
            } else if (major == 2 || major == 3) {
                if (pre.remaining() < 4) {
                    throw new OnnxException(file + ": truncated .npy header");
                }
                headerLen = pre.getInt() & 0xffffffffL;
                prefix = 12;
            } else {
                throw new OnnxException(file + ": unsupported .npy format version " + major);
            }
            if (headerLen > MAX_HEADER || prefix + headerLen > size) {
                throw new OnnxException(file + ": .npy header length " + headerLen + " is invalid for a file of "
                        + size + " bytes");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            long pos = prefix;
            while (hb.hasRemaining()) {
                int n = ch.read(hb, pos);
                if (n < 0) {
                    throw new OnnxException(file + ": truncated .npy header");
                }
                pos += n;
            }
            String header = new String(hb.array(), major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            Matcher m = HEADER.matcher(header);
            if (!m.matches()) {
                throw new OnnxException(file + ": cannot parse .npy header " + header.trim());
            }
            if (m.group(2).equals("True")) {
                throw new OnnxException(file + ": Fortran-order arrays are not supported; save with C order");
            }
            DataType dt = dtype(file, m.group(1));
            List<Long> dims = new ArrayList<>();
            for (String d : m.group(3).split(",")) {
                String s = d.trim();
                if (s.isEmpty()) {
                    continue;
                }
                try {
                    dims.add(Long.parseLong(s));
                } catch (NumberFormatException e) {
                    throw new OnnxException(file + ": invalid .npy shape (" + m.group(3) + ")");
                }
            }
            long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
            long need;
            try {
                need = Math.multiplyExact(Tensor.checkedElementCount(shape), (long) dt.byteSize());
            } catch (ArithmeticException | OnnxException e) {
                throw new OnnxException(file + ": invalid .npy shape (" + m.group(3) + ")");
            }
            long dataStart = prefix + headerLen;
            if (size - dataStart != need) {
                throw new OnnxException(file + ": .npy data has " + (size - dataStart) + " bytes, expected " + need
                        + " for " + m.group(1) + " " + java.util.Arrays.toString(shape));
            }
            return new Tensor(dt, shape, new FileData(file, dataStart, need));
        } catch (IOException e) {
            throw new OnnxException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static DataType dtype(Path file, String descr) {
        return switch (descr) {
            case "<f4" -> DataType.FLOAT;
            case "<f8" -> DataType.DOUBLE;
            case "<f2" -> DataType.FLOAT16;
            case "<i8" -> DataType.INT64;
            case "<i4" -> DataType.INT32;
            case "<i2" -> DataType.INT16;
            case "<u2" -> DataType.UINT16;
            case "|u1", "<u1" -> DataType.UINT8;
            case "|i1", "<i1" -> DataType.INT8;
            case "|b1" -> DataType.BOOL;
            default -> throw new OnnxException(file + ": unsupported .npy dtype '" + descr + "'"
                    + (descr.startsWith(">") ? " (big-endian; convert with arr.astype(arr.dtype.newbyteorder('<')))"
                    : ""));
        };
    }

    private static String descr(DataType t) {
        return switch (t) {
            case FLOAT -> "<f4";
            case DOUBLE -> "<f8";
            case FLOAT16 -> "<f2";
            case INT64 -> "<i8";
            case INT32 -> "<i4";
            case INT16 -> "<i2";
            case UINT16 -> "<u2";
            case UINT8 -> "|u1";
            case INT8 -> "|i1";
            case BOOL -> "|b1";
            default -> throw new OnnxException("cannot write " + t + " to .npy");
        };
    }

    /** Writes a version-1 .npy file (header padded so the data starts 64-byte aligned), atomically. */
    public static void write(Path file, Tensor t) {
        StringBuilder shape = new StringBuilder();
        for (long d : t.shape()) {
            shape.append(d).append(", ");
        }
        String dims = t.rank() == 1 ? t.shape()[0] + "," : shape.length() == 0 ? "" : shape.substring(0,
                shape.length() - 2);
        String dict = "{'descr': '" + descr(t.dataType()) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
        int total = 10 + dict.length() + 1;
        int padded = (total + 63) / 64 * 64;
        String header = dict + " ".repeat(padded - total) + "\n";
        ByteBuffer pre = ByteBuffer.allocate(10 + header.length()).order(ByteOrder.LITTLE_ENDIAN);
        pre.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length())
                .put(header.getBytes(StandardCharsets.ISO_8859_1)).flip();
        try {
            AtomicFiles.write(file, ch -> {
                AtomicFiles.writeFully(ch, pre);
                t.data().writeTo(ch);
            });
        } catch (IOException e) {
            throw new OnnxException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
