package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;

import java.math.BigInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    private static final BigInteger MASK = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    /** llama2.c's xorshift64* coin, computed independently with unsigned big-integer arithmetic. */
    private static final class BigCoin {
        BigInteger s;

        BigCoin(long seed) {
            s = BigInteger.valueOf(seed);
        }

        double next() {
            s = s.xor(s.shiftRight(12));
            s = s.xor(s.shiftLeft(25)).and(MASK);
            s = s.xor(s.shiftRight(27));
            BigInteger u32 = s.multiply(new BigInteger("2545F4914F6CDD1D", 16)).and(MASK).shiftRight(32);
            return u32.shiftRight(8).doubleValue() / 16777216.0;
        }
    }

    @Test
    void greedyTakesTheFirstLargest() {
        Sampler s = new Sampler(5, 0f, 0.9f, 1);
        assertEquals(2, s.sample(new float[]{1, 2, 3, 3, -1}));
        assertEquals(0, s.sample(new float[]{7, 7, 7, 7, 7}));
    }

    @Test
    void uniformSamplingFollowsTheXorshiftCoin() {
        // 4 equal logits: probabilities exactly 1/4, cumulative 0.25, 0.5, 0.75, 1 -> token = floor(4 * coin)
        for (long seed : new long[]{1, 42, 123456789L, Long.MAX_VALUE}) {
            Sampler s = new Sampler(4, 1f, 1f, seed);
            BigCoin coin = new BigCoin(seed);
            for (int i = 0; i < 200; i++) {
                assertEquals((int) Math.floor(4 * coin.next()), s.sample(new float[]{0.5f, 0.5f, 0.5f, 0.5f}), "draw " + i);
            }
        }
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        // probabilities about 0.3, 0.3, 0.2, 0.2: with top-p 0.5 the nucleus is tokens 0 and 1 (0.6 > 0.5)
        float[] logits = {(float) Math.log(0.3), (float) Math.log(0.3), (float) Math.log(0.2), (float) Math.log(0.2)};
        Sampler s = new Sampler(4, 1f, 0.5f, 7);
        int[] counts = new int[4];
        for (int i = 0; i < 2000; i++) {
            counts[s.sample(logits)]++;
        }
        assertEquals(0, counts[2] + counts[3]);
        assertTrue(counts[0] > 800 && counts[1] > 800, "both nucleus tokens drawn about equally: " + counts[0] + "/" + counts[1]);
    }

    @Test
    void temperatureSharpensTowardsTheArgmax() {
        float[] logits = {0f, 1f, 0.5f};
        Sampler cold = new Sampler(3, 0.01f, 1f, 3);
        for (int i = 0; i < 100; i++) {
            assertEquals(1, cold.sample(logits));
        }
    }

    @Test
    void rejectsBadSettings() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, -1f, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, Float.NaN, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 1f, 0.9f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 1f, 0.9f, 1).sample(new float[3]));
    }
}
