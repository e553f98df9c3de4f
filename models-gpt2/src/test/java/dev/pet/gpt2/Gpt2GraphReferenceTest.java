package dev.pet.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.tensor.DataType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * ONNX Runtime running our graph agrees with an independent double-precision GPT-2 (plain loops in the test). The
 * float32 tolerance 1e-4 is what the issue asks; observed differences are ~1e-6 (float32 rounding over width-64
 * sums). The float64 graph is held to 1e-9.
 */
class Gpt2GraphReferenceTest {
    private static Gpt2Weights weights;
    private static NaiveGpt2 reference;
    private static final long[][] IDS = {
        {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13},
        {50256, 50256, 50256, 40, 588, 257, 1332, 11, 1049, 0}};

    @BeforeAll
    static void setUp() {
        weights = TestModels.nonTrivial(TestModels.tiny(), 42);
        reference = new NaiveGpt2(weights);
    }

    @Test
    void float32LogitsMatchNaiveReferenceWithoutMask() {
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(weights, CausalLmGraphOptions.training()));
                Gpt2Output out = s.run(IDS, null)) {
            for (int row = 0; row < IDS.length; row++) {
                assertClose(reference.logits(IDS[row], null), out, row, 0, 1e-4);
            }
        }
    }

    @Test
    void float32LogitsMatchNaiveReferenceWithLeftPaddingMask() {
        long[][] mask = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1, 1, 1}};
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(weights, CausalLmGraphOptions.training()));
                Gpt2Output masked = s.run(IDS, mask);
                Gpt2Output unmasked = s.run(IDS, null)) {
            assertClose(reference.logits(IDS[0], mask[0]), masked, 0, 0, 1e-4);
            // Padded queries (positions 0-2 of row 1) see no real key; HF leaves them meaningless, so skip them.
            assertClose(reference.logits(IDS[1], mask[1]), masked, 1, 3, 1e-4);
            double diff = Math.abs(masked.logits(1, 5)[0] - unmasked.logits(1, 5)[0]);
            assertTrue(diff > 1e-3, "the mask must change row 1's logits, changed by " + diff);
        }
    }

    @Test
    void rightPaddingAndInferenceGraphWithEmptyPastMatchReference() {
        long[][] mask = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}};
        try (Gpt2Session s = Gpt2Session.create(Gpt2Graph.build(weights, CausalLmGraphOptions.inference()));
                Gpt2Output out = s.run(IDS, mask, null, null)) {
            assertClose(reference.logits(IDS[0], mask[0]), out, 0, 0, 1e-4);
            assertClose(reference.logits(IDS[1], mask[1]), out, 1, 0, 1e-4);
        }
    }

    @Test
    void float64GraphMatchesReferenceClosely() {
        CausalLmGraphOptions o = CausalLmGraphOptions.training().withDataType(DataType.DOUBLE);
        long[][] mask = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1, 1, 1}};
        Gpt2Graph g = Gpt2Graph.build(weights, o);
        assertEquals(DataType.DOUBLE, g.model().graph().requireValue("logits").type().dataType());
        try (Gpt2Session s = Gpt2Session.create(g); Gpt2Output out = s.run(IDS, mask)) {
            // The ONNX LayerNormalization epsilon is a float attribute (1e-5f != 1e-5), worth ~1e-9 relative.
            assertClose(reference.logits(IDS[0], mask[0]), out, 0, 0, 1e-6);
        }
    }

    private static void assertClose(double[][] expected, Gpt2Output out, int row, int fromPosition, double tol) {
        double worst = 0;
        for (int t = fromPosition; t < expected.length; t++) {
            float[] got = out.logits(row, t);
            for (int v = 0; v < got.length; v++) {
                double d = Math.abs(expected[t][v] - got[v]);
                if (!(d <= tol)) {
                    throw new AssertionError("logits[" + row + "][" + t + "][" + v + "]: expected " + expected[t][v]
                            + ", got " + got[v]);
                }
                worst = Math.max(worst, d);
            }
        }
        assertTrue(worst <= tol);
    }
}
