package dev.pet.onnx.tensor;

import dev.pet.onnx.OnnxException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;

/** A run of zero bytes of any length that is streamed, never allocated whole. */
public record ZeroData(long byteSize) implements TensorData {
    private static final int CHUNK = 1 << 20;

    public ZeroData {
        if (byteSize < 0) {
            throw new IllegalArgumentException("byteSize < 0: " + byteSize);
        }
    }

    @Override
    public ByteBuffer asByteBuffer() {
        if (byteSize > Integer.MAX_VALUE) {
            throw new OnnxException("tensor of " + byteSize + " bytes is above 2 GiB and can only be streamed");
        }
        return ByteBuffer.allocate((int) byteSize).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer()
                .order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void writeTo(WritableByteChannel out) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocateDirect(CHUNK);
        long left = byteSize;
        while (left > 0) {
            zeros.clear().limit((int) Math.min(CHUNK, left));
            while (zeros.hasRemaining()) {
                left -= out.write(zeros);
            }
        }
    }
}
