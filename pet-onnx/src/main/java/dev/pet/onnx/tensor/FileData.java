package dev.pet.onnx.tensor;

import dev.pet.onnx.OnnxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Predicate;

/**
 * Tensor bytes that live in a file region. They are memory-mapped on first use (read-only) unless a mapping is
 * supplied, so a multi-gigabyte checkpoint costs no heap; regions above 2 GiB are streamed with {@code transferTo}.
 * Because the region is known, ONNX Runtime can read it from the file itself (an ONNX external-data reference), so
 * frozen weights need not pass through this process's memory at all.
 */
public final class FileData implements TensorData {
    private final Path file;
    private final long offset;
    private final long length;
    private volatile ByteBuffer mapped;
    /** Kept reachable while this region is: a temporary file is deleted once its owner is unreachable. */
    private final Object owner;

    public FileData(Path file, long offset, long length) {
        this(file, offset, length, null);
    }

    /**
     * A region of a temporary file: {@code owner} stays reachable as long as this region does, so a file that is
     * deleted when its owner becomes unreachable outlives every tensor that reads it.
     */
    public FileData(Path file, long offset, long length, Object owner) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative offset or length for " + file);
        }
        this.file = file;
        this.offset = offset;
        this.length = length;
        this.owner = owner;
    }

    /** A region the caller already mapped (after checking its bounds); the mapping is used as is. */
    public FileData(Path file, long offset, ByteBuffer mapped) {
        this(file, offset, mapped.remaining(), null);
        this.mapped = mapped.slice();
    }

    public Path file() {
        return file;
    }

    public long offset() {
        return offset;
    }

    @Override
    public long byteSize() {
        return length;
    }

    @Override
    public ByteBuffer asByteBuffer() {
        if (length > Integer.MAX_VALUE) {
            throw new OnnxException("tensor data of " + length + " bytes in " + file
                    + " is above 2 GiB and can only be streamed");
        }
        ByteBuffer m = mapped;
        if (m == null) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                if (offset + length > ch.size()) {
                    throw new OnnxException(file + ": tensor data at offset " + offset + " with length " + length
                            + " runs past the end of the file (" + ch.size() + " bytes)");
                }
                m = ch.map(FileChannel.MapMode.READ_ONLY, offset, length);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map " + file, e);
            }
            mapped = m;
        }
        return m.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Reads the region from the file in order, in little-endian chunks of whole {@code alignment}-byte elements, until
     * {@code chunk} returns false. Reads with positional file reads, never through the mapping, so a scan of a
     * multi-gigabyte checkpoint leaves its pages in the page cache but not resident in this process (where ONNX
     * Runtime's own mapping of the same file would count them a second time), and regions above 2 GiB work too.
     *
     * @return whether every chunk was accepted
     */
    public boolean readChunks(int alignment, Predicate<ByteBuffer> chunk) {
        // One heap buffer per thread, reused: the channel reads through the JDK's per-thread cached direct buffer,
        // where a new buffer per call is fresh memory whose page faults cost more than the read itself (0.3-0.4 s
        // over GPT-2 small's 148 tensors on this VM, measured with perf).
        ByteBuffer buf = READ_BUFFER.get().clear().order(ByteOrder.LITTLE_ENDIAN);
        buf.limit(CHUNK_BYTES - CHUNK_BYTES % alignment);
        buf = buf.slice().order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                buf.clear().limit((int) Math.min(buf.capacity(), end - pos));
                while (buf.hasRemaining()) {
                    int n = ch.read(buf, pos + buf.position());
                    if (n < 0) {
                        throw new OnnxException(file + ": unexpected end of file at " + (pos + buf.position())
                                + " while reading a tensor of " + length + " bytes at offset " + offset);
                    }
                }
                pos += buf.flip().remaining();
                if (!chunk.test(buf)) {
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static final int CHUNK_BYTES = 1 << 20;
    private static final ThreadLocal<ByteBuffer> READ_BUFFER = ThreadLocal.withInitial(
            () -> ByteBuffer.allocate(CHUNK_BYTES));

    @Override
    public void writeTo(WritableByteChannel out) throws IOException {
        ByteBuffer m = mapped;
        if (m != null) {
            // The mapping, not the path: the file may have been replaced since it was mapped.
            ByteBuffer b = m.duplicate();
            while (b.hasRemaining()) {
                out.write(b);
            }
            return;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                long n = ch.transferTo(pos, end - pos, out);
                if (n <= 0) {
                    throw new OnnxException(file + ": unexpected end of file at " + pos + " while copying tensor");
                }
                pos += n;
            }
        }
    }
}
