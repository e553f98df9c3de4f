package dev.pet.onnx.tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * The bytes behind a {@link Tensor}, little-endian, in row-major order. Implementations avoid copies: a heap or
 * direct buffer, a memory-mapped region of a file, or a run of zeros that is never materialised.
 */
public interface TensorData {
    /** Size in bytes; may exceed {@code Integer.MAX_VALUE}. */
    long byteSize();

    /**
     * A read-only little-endian view positioned at 0. Fails for data above 2 GiB, which can only be streamed
     * with {@link #writeTo}.
     */
    ByteBuffer asByteBuffer();

    /** Streams all bytes to {@code out}. */
    void writeTo(WritableByteChannel out) throws IOException;
}
