package dev.pet.onnx.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class HalfTest {
    @Test
    void everyFp16BitPatternRoundTripsThroughFloat() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = Half.fp16ToFloat((short) bits);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Half.fp16ToFloat(Half.floatToFp16(f))));
                continue;
            }
            assertEquals(bits, Half.floatToFp16(f) & 0xffff, "pattern " + Integer.toHexString(bits));
        }
    }

    @Test
    void fp16RoundsToNearestEven() {
        // Reference: the nearest representable binary16 value by exhaustive search over all finite patterns.
        Random r = new Random(7);
        for (int i = 0; i < 20_000; i++) {
            float f = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(30) - 20));
            short got = Half.floatToFp16(f);
            double err = Math.abs(Half.fp16ToFloat(got) - (double) f);
            // Neighbours in magnitude, same sign: no other binary16 value may be strictly closer.
            int sign = got & 0x8000;
            int mag = got & 0x7fff;
            float next = Half.fp16ToFloat((short) (sign | (mag + 1)));
            float prev = mag == 0 ? Half.fp16ToFloat((short) (sign ^ 0x8001)) : Half.fp16ToFloat((short) (sign | (mag - 1)));
            assertTrue(err <= Math.abs(next - (double) f) && err <= Math.abs(prev - (double) f), "value " + f);
        }
        assertEquals(0x7c00, Half.floatToFp16(1e6f) & 0xffff, "overflow to +inf");
        assertEquals(0x3c00, Half.floatToFp16(1f) & 0xffff);
        assertEquals(0x0001, Half.floatToFp16(6e-8f) & 0xffff, "smallest subnormal");
    }

    @Test
    void bf16KeepsTheUpperHalfWithRounding() {
        assertEquals(1f, Half.bf16ToFloat(Half.floatToBf16(1f)));
        assertEquals(0x3f80, Half.floatToBf16(1.00390625f) & 0xffff, "tie rounds to even");
        assertEquals(0x3f81, Half.floatToBf16(1.0078125f) & 0xffff);
        assertTrue(Float.isNaN(Half.bf16ToFloat(Half.floatToBf16(Float.NaN))));
        Random r = new Random(3);
        for (int i = 0; i < 10_000; i++) {
            float f = (float) r.nextGaussian();
            assertEquals(f, Half.bf16ToFloat(Half.floatToBf16(f)), Math.abs(f) / 128);
        }
    }
}
