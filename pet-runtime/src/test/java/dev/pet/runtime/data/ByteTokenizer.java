package dev.pet.runtime.data;

import dev.pet.api.TextTokenizer;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;

/** Test tokenizer: one token per UTF-8 byte, EOS = 256; counts encode calls to observe caching. */
final class ByteTokenizer implements TextTokenizer {
    final AtomicInteger encodeCalls = new AtomicInteger();

    @Override
    public long[] encode(String text) {
        encodeCalls.incrementAndGet();
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        long[] ids = new long[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }

    @Override
    public String decode(long[] ids) {
        byte[] bytes = new byte[ids.length];
        int n = 0;
        for (long id : ids) {
            if (id < 256) {
                bytes[n++] = (byte) id;
            }
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }

    @Override
    public int vocabularySize() {
        return 257;
    }

    @Override
    public long eosTokenId() {
        return 256;
    }
}
