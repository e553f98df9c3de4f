package dev.pet.runtime.schedule;

import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.LrScheduleConfig;
import dev.pet.runtime.config.LrScheduleConfig.Type;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checks against the HF formulas written out independently (multiplier functions of the step). Tolerance 1e-15. */
class LrScheduleTest {
    static final double EPS = 1e-15;

    static LrSchedule schedule(Type type, double lr, long warmup, double lrEnd, double power, long total) {
        return LrSchedule.of(new LrScheduleConfig(type, lr, warmup, 0, lrEnd, power, 0.5, -1), total);
    }

    @Test
    void warmupRisesLinearlyFromZero() {
        LrSchedule s = schedule(Type.COSINE, 1e-3, 10, 0, 1, 100);
        assertEquals(0.0, s.learningRate(0));
        assertEquals(1e-3 * 3 / 10, s.learningRate(3), EPS);
        assertEquals(1e-3, s.learningRate(10), EPS);
    }

    @Test
    void constantWithWarmup() {
        LrSchedule s = schedule(Type.CONSTANT, 2e-4, 4, 0, 1, 50);
        for (long k = 0; k < 60; k++) {
            double hf = k < 4 ? (double) k / 4 : 1.0;
            assertEquals(2e-4 * hf, s.learningRate(k), EPS, "step " + k);
        }
    }

    @Test
    void linearMatchesHfLambda() {
        long warmup = 5;
        long total = 40;
        LrSchedule s = schedule(Type.LINEAR, 1.0, warmup, 0, 1, total);
        for (long k = 0; k < 50; k++) {
            double hf = k < warmup ? (double) k / Math.max(1, warmup)
                    : Math.max(0.0, (double) (total - k) / Math.max(1, total - warmup));
            assertEquals(hf, s.learningRate(k), EPS, "step " + k);
        }
        assertEquals(0.0, s.learningRate(total));
    }

    @Test
    void cosineMatchesHfLambdaAndHitsHalfwayAtMidpoint() {
        long warmup = 10;
        long total = 110;
        LrSchedule s = schedule(Type.COSINE, 3e-4, warmup, 0, 1, total);
        for (long k = warmup; k <= total + 5; k++) {
            double progress = (double) (k - warmup) / Math.max(1, total - warmup);
            double hf = Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
            assertEquals(3e-4 * hf, s.learningRate(k), EPS, "step " + k);
        }
        assertEquals(1.5e-4, s.learningRate(60), 1e-18);
    }

    @Test
    void cosineWithMinLrDecaysToIt() {
        LrSchedule s = schedule(Type.COSINE, 1e-3, 0, 1e-5, 1, 100);
        assertEquals(1e-3, s.learningRate(0), EPS);
        assertEquals(1e-5, s.learningRate(100), EPS);
        assertEquals((1e-3 + 1e-5) / 2, s.learningRate(50), EPS);
        for (long k = 1; k <= 100; k++) {
            assertTrue(s.learningRate(k) <= s.learningRate(k - 1));
        }
    }

    @Test
    void polynomialMatchesHfDecay() {
        double lrInit = 1e-3;
        double lrEnd = 1e-7;
        double power = 2.0;
        long warmup = 3;
        long total = 30;
        LrSchedule s = schedule(Type.POLYNOMIAL, lrInit, warmup, lrEnd, power, total);
        for (long k = 0; k < 40; k++) {
            double hf;
            if (k < warmup) {
                hf = (double) k / Math.max(1, warmup);
            } else if (k > total) {
                hf = lrEnd / lrInit;
            } else {
                double remaining = 1.0 - (double) (k - warmup) / (total - warmup);
                hf = ((lrInit - lrEnd) * Math.pow(remaining, power) + lrEnd) / lrInit;
            }
            assertEquals(lrInit * hf, s.learningRate(k), 1e-18, "step " + k);
        }
    }

    @Test
    void warmupRatioRoundsUpAndExplicitTotalWins() {
        LrSchedule s = LrSchedule.of(new LrScheduleConfig(Type.LINEAR, 1.0, 0, 0.1, 0, 1, 0.5, -1), 95);
        assertEquals(10, s.warmupSteps());
        LrSchedule fixed = LrSchedule.of(new LrScheduleConfig(Type.LINEAR, 1.0, 0, 0, 0, 1, 0.5, 20), 95);
        assertEquals(20, fixed.totalSteps());
        ConfigException e = assertThrows(ConfigException.class,
                () -> LrSchedule.of(LrScheduleConfig.defaults(), 0));
        assertEquals("lr_schedule.total_steps", e.keyPath());
    }
}
