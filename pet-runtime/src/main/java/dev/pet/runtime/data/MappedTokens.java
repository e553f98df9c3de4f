package dev.pet.runtime.data;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Token ids stored little-endian in a file region, memory-mapped in segments so corpora larger than memory (and than
 * 2 GiB) are read page by page. An optional byte-per-token mask file marks loss positions.
 */
final class MappedTokens implements TokenSequence {
    /** Element encodings of token files. */
    enum Width {
        U8(1), U16(2), I32(4), I64(8);

        final int bytes;

        Width(int bytes) {
            this.bytes = bytes;
        }
    }

    static final long DEFAULT_SEGMENT_BYTES = 1L << 30;

    private final Path file;
    private final long dataOffset;
    private final Width width;
    private final long size;
    private final long segmentBytes;
    private final MappedByteBuffer[] segments;
    private final MappedTokens mask;

    private MappedTokens(Path file, long dataOffset, Width width, long size, long segmentBytes,
                         MappedByteBuffer[] segments, MappedTokens mask) {
        this.file = file;
        this.dataOffset = dataOffset;
        this.width = width;
        this.size = size;
        this.segmentBytes = segmentBytes;
        this.segments = segments;
        this.mask = mask;
    }

    static MappedTokens map(Path file, long dataOffset, long count, Width width) {
        return map(file, dataOffset, count, width, null, DEFAULT_SEGMENT_BYTES);
    }

    /** Maps {@code count} elements starting at {@code dataOffset}; {@code segmentBytes} must be a multiple of 8. */
    static MappedTokens map(Path file, long dataOffset, long count, Width width, MappedTokens mask, long segmentBytes) {
        if (segmentBytes <= 0 || segmentBytes % 8 != 0) {
            throw new IllegalArgumentException("segmentBytes must be a positive multiple of 8: " + segmentBytes);
        }
        if (mask != null && mask.size() != count) {
            throw new DataException(file + ": mask has " + mask.size() + " entries, tokens " + count);
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long bytes = Math.multiplyExact(count, (long) width.bytes);
            if (dataOffset < 0 || dataOffset + bytes > channel.size()) {
                throw new DataException(file + ": needs " + bytes + " bytes of tokens from offset " + dataOffset
                        + " but the file has " + channel.size());
            }
            int n = (int) ((bytes + segmentBytes - 1) / segmentBytes);
            MappedByteBuffer[] segments = new MappedByteBuffer[n];
            for (int i = 0; i < n; i++) {
                long start = i * segmentBytes;
                long length = Math.min(segmentBytes, bytes - start);
                segments[i] = channel.map(FileChannel.MapMode.READ_ONLY, dataOffset + start, length);
                segments[i].order(ByteOrder.LITTLE_ENDIAN);
            }
            return new MappedTokens(file, dataOffset, width, count, segmentBytes, segments, mask);
        } catch (IOException e) {
            throw new DataException("cannot map " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public long token(long index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("token " + index + " of " + size + " in " + file);
        }
        long byteOffset = index * width.bytes;
        MappedByteBuffer segment = segments[(int) (byteOffset / segmentBytes)];
        int at = (int) (byteOffset % segmentBytes);
        long value = switch (width) {
            case U8 -> segment.get(at) & 0xFFL;
            case U16 -> segment.getShort(at) & 0xFFFFL;
            case I32 -> segment.getInt(at);
            case I64 -> segment.getLong(at);
        };
        if (value < 0) {
            throw new DataException(file + ": negative token id " + value + " at index " + index);
        }
        return value;
    }

    /** Scans segment by segment (no per-token bounds checks): a single pass over the mapped file. */
    @Override
    public java.util.Optional<String> findIdOutside(long limit) {
        for (int s = 0; s < segments.length; s++) {
            MappedByteBuffer segment = segments[s];
            int end = segment.limit();
            for (int at = 0; at < end; at += width.bytes) {
                long value = switch (width) {
                    case U8 -> segment.get(at) & 0xFFL;
                    case U16 -> segment.getShort(at) & 0xFFFFL;
                    case I32 -> segment.getInt(at);
                    case I64 -> segment.getLong(at);
                };
                if (value < 0 || value >= limit) {
                    long byteInData = s * segmentBytes + at;
                    return java.util.Optional.of("token id " + value + " at index " + byteInData / width.bytes
                            + " (byte offset " + (dataOffset + byteInData) + ") of " + file);
                }
            }
        }
        return java.util.Optional.empty();
    }

    @Override
    public boolean inLoss(long index) {
        return mask == null || mask.token(index) != 0;
    }
}
