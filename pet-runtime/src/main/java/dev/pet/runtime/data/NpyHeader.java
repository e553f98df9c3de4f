package dev.pet.runtime.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The header of a token {@code .npy} file: little-endian int32/int64 (or uint16), C order, any shape (flattened).
 * Bounds-checked: the header length is capped and the data must fit in the file.
 */
record NpyHeader(long dataOffset, long count, MappedTokens.Width width) {
    private static final int MAX_HEADER = 1 << 16;
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern ORDER = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    static NpyHeader read(Path file) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer prefix = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            channel.read(prefix, 0);
            prefix.flip();
            if (prefix.remaining() < 10 || (prefix.get(0) & 0xFF) != 0x93 || prefix.get(1) != 'N' || prefix.get(2) != 'U'
                    || prefix.get(3) != 'M' || prefix.get(4) != 'P' || prefix.get(5) != 'Y') {
                throw new DataException(file + ": not a .npy file (magic \\x93NUMPY missing)");
            }
            int major = prefix.get(6);
            long headerLength;
            int lengthBytes;
            if (major == 1) {
                headerLength = prefix.getShort(8) & 0xFFFF;
                lengthBytes = 2;
            } else if (major == 2 || major == 3) {
                if (prefix.remaining() < 12) {
                    throw new DataException(file + ": truncated .npy header");
                }
                headerLength = prefix.getInt(8) & 0xFFFFFFFFL;
                lengthBytes = 4;
            } else {
                throw new DataException(file + ": unsupported .npy version " + major);
            }
            long start = 8 + lengthBytes;
            if (headerLength > MAX_HEADER || start + headerLength > channel.size()) {
                throw new DataException(file + ": .npy header length " + headerLength + " exceeds the file or "
                        + MAX_HEADER + " bytes");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            while (header.hasRemaining() && channel.read(header, start + header.position()) > 0) {
                // keep reading
            }
            String text = new String(header.array(), StandardCharsets.ISO_8859_1);
            Matcher descr = DESCR.matcher(text);
            Matcher order = ORDER.matcher(text);
            Matcher shape = SHAPE.matcher(text);
            if (!descr.find() || !order.find() || !shape.find()) {
                throw new DataException(file + ": .npy header lacks descr/fortran_order/shape: " + text.trim());
            }
            MappedTokens.Width width = switch (descr.group(1)) {
                case "<i4" -> MappedTokens.Width.I32;
                case "<i8" -> MappedTokens.Width.I64;
                case "<u2" -> MappedTokens.Width.U16;
                default -> throw new DataException(file + ": token .npy must be int32, int64 or uint16 little-endian"
                        + " ('<i4', '<i8', '<u2'), found '" + descr.group(1) + "'");
            };
            if (order.group(1).equals("True")) {
                throw new DataException(file + ": Fortran-order .npy is not supported for tokens");
            }
            long count = 1;
            for (String dim : shape.group(1).split(",")) {
                if (dim.isBlank()) {
                    continue;
                }
                long d;
                try {
                    d = Long.parseLong(dim.trim());
                } catch (NumberFormatException e) {
                    throw new DataException(file + ": bad .npy shape (" + shape.group(1) + ")");
                }
                if (d < 0) {
                    throw new DataException(file + ": negative .npy dimension " + d);
                }
                count = Math.multiplyExact(count, d);
            }
            long dataOffset = start + headerLength;
            long needed = Math.multiplyExact(count, (long) width.bytes);
            if (dataOffset + needed > channel.size()) {
                throw new DataException(file + ": .npy declares " + count + " tokens (" + needed + " bytes) but only "
                        + (channel.size() - dataOffset) + " bytes of data follow the header");
            }
            return new NpyHeader(dataOffset, count, width);
        } catch (IOException e) {
            throw new DataException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (ArithmeticException e) {
            throw new DataException(file + ": .npy shape overflows", e);
        }
    }
}
