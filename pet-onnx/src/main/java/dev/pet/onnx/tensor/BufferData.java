package dev.pet.onnx.tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;

/** Tensor bytes held in a (heap, direct or mapped) buffer; the buffer is shared, not copied. */
public record BufferData(ByteBuffer buffer) implements TensorData {
    public BufferData {
        buffer = buffer.slice().order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public long byteSize() {
        return buffer.remaining();
    }

    @Override
    public ByteBuffer asByteBuffer() {
        return buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void writeTo(WritableByteChannel out) throws IOException {
        ByteBuffer b = asByteBuffer();
        while (b.hasRemaining()) {
            out.write(b);
        }
    }
}
