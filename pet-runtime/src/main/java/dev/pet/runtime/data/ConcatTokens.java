package dev.pet.runtime.data;

import java.util.List;

/** Several token sequences read back to back, in order (files of a pre-tokenized corpus). */
final class ConcatTokens implements TokenSequence {
    private final TokenSequence[] parts;
    private final long[] starts;
    private final long size;

    ConcatTokens(List<? extends TokenSequence> parts) {
        this.parts = parts.toArray(new TokenSequence[0]);
        this.starts = new long[this.parts.length + 1];
        for (int i = 0; i < this.parts.length; i++) {
            starts[i + 1] = starts[i] + this.parts[i].size();
        }
        this.size = starts[this.parts.length];
    }

    @Override
    public long size() {
        return size;
    }

    private int part(long index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("token " + index + " of " + size);
        }
        int lo = 0;
        int hi = parts.length - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (starts[mid] <= index) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    @Override
    public java.util.Optional<String> findIdOutside(long limit) {
        for (TokenSequence part : parts) {
            java.util.Optional<String> bad = part.findIdOutside(limit);
            if (bad.isPresent()) {
                return bad;
            }
        }
        return java.util.Optional.empty();
    }

    @Override
    public long token(long index) {
        int p = part(index);
        return parts[p].token(index - starts[p]);
    }

    @Override
    public boolean inLoss(long index) {
        int p = part(index);
        return parts[p].inLoss(index - starts[p]);
    }
}
