package dev.pet.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class MatMulPeakTest {
    @Test
    void measuresATinyProductAndCountsItsFlops() {
        MatMulPeak.Shape shape = new MatMulPeak.Shape("tiny", 8, 16, 4);
        assertEquals(2.0 * 8 * 16 * 4, shape.flops());
        try (OrtEngine engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(1))) {
            MatMulPeak.Report r = MatMulPeak.measure(engine, List.of(shape), 0.0);
            MatMulPeak.Result t = r.results().get(0);
            assertTrue(t.iterations() >= 3 && t.medianSeconds() > 0, t.toString());
            assertEquals(shape.flops() / t.medianSeconds() / 1e9, r.combinedGflops(), 1e-9);
            assertTrue(MatMulPeak.format(r).contains("tiny"));
        }
    }

    @Test
    void gpt2ShapesUseBatchFourTimesSequence128() {
        List<MatMulPeak.Shape> s = MatMulPeak.gpt2SmallShapes(true);
        assertTrue(s.stream().allMatch(x -> x.m() == 512));
        assertEquals(50257, s.get(s.size() - 1).n());
        assertThrows(EngineException.class, () -> new MatMulPeak.Shape("bad", 0, 1, 1));
    }
}
