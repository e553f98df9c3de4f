package dev.pet.runtime.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.runtime.metrics.LossCurvePlot.Ticks;
import java.math.BigDecimal;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LossCurveTicksTest {
    @Test
    void theIssuesLossRangeGetsRoundLabels() {
        // The range that used to be labelled 10.397, 10.595, ...
        Ticks t = Ticks.covering(10.397, 10.595, 6);
        assertEquals(0.05, t.spacing(), 1e-12);
        assertEquals(List.of(10.35, 10.4, 10.45, 10.5, 10.55, 10.6), t.values());
        assertEquals("10.35", t.label(10.35));
        assertEquals("10.40", t.label(10.4));
    }

    @Test
    void stepAxisTicksAreWholeRoundNumbers() {
        Ticks t = Ticks.covering(1, 1170, 6);
        assertEquals(200, t.spacing(), 1e-12);
        assertEquals(List.of(0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0), t.values());
        assertEquals("1200", t.label(1200));
    }

    @Test
    void randomRangesAlwaysGetOneTwoOrFiveTimesAPowerOfTenAndCoverTheData() {
        Random r = new Random(3);
        for (int i = 0; i < 2000; i++) {
            double lo = (r.nextDouble() - 0.3) * Math.pow(10, r.nextInt(8) - 3);
            double hi = lo + r.nextDouble() * Math.pow(10, r.nextInt(8) - 4) + 1e-9;
            Ticks t = Ticks.covering(lo, hi, 6);
            BigDecimal mantissa = new BigDecimal(t.spacing()).round(new java.math.MathContext(6))
                    .scaleByPowerOfTen(-(int) Math.floor(Math.log10(t.spacing()))).stripTrailingZeros();
            assertTrue(List.of("1", "2", "5").contains(mantissa.toPlainString()), t + " spacing " + mantissa);
            assertTrue(t.min() <= lo && t.max() >= hi, t + " covers " + lo + ".." + hi);
            int n = t.values().size();
            assertTrue(n >= 3 && n <= 12, t + ": " + n + " ticks");
            for (double v : t.values()) {
                String label = t.label(v);
                assertEquals(0, new BigDecimal(label).remainder(BigDecimal.valueOf(t.spacing())
                        .round(new java.math.MathContext(6))).signum(), label + " is a multiple of " + t.spacing());
            }
        }
    }

    @Test
    void aFlatCurveStillGetsAnAxis() {
        Ticks t = Ticks.covering(2.5, 2.5, 6);
        assertTrue(t.min() < 2.5 && t.max() > 2.5, t.toString());
    }
}
