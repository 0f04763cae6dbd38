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

    /**
     * Nucleus sampling over a 512-token vocabulary with many tied probabilities, against llama2.c's algorithm written
     * out independently (softmax in float as llama2.c, then candidates sorted by a stable comparator sort, ties in index order):
     * the same coin must pick the same token, draw after draw. Also: a row read in place from a batch's logits
     * ({@code sample(logits, offset)}) gives what a copy of that row gives.
     */
    @Test
    void topPMatchesAStableSortReference() {
        java.util.Random rnd = new java.util.Random(12);
        int vocab = 512;
        for (int round = 0; round < 40; round++) {
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                // a few distinct levels: many exact ties inside the nucleus
                logits[i] = round % 2 == 0 ? rnd.nextInt(6) * 0.5f : (float) rnd.nextGaussian() * 2f;
            }
            float topp = 0.5f + 0.45f * rnd.nextFloat();
            long seed = 1 + rnd.nextInt(1_000_000);
            Sampler s = new Sampler(vocab, 0.8f, topp, seed);
            Sampler inBatch = new Sampler(vocab, 0.8f, topp, seed);
            float[] batch = new float[3 * vocab];
            System.arraycopy(logits, 0, batch, vocab, vocab);
            BigCoin coin = new BigCoin(seed);
            for (int draw = 0; draw < 20; draw++) {
                int expected = referenceTopP(logits, 0.8f, topp, (float) coin.next());
                assertEquals(expected, s.sample(logits), "round " + round + " draw " + draw);
                assertEquals(expected, inBatch.sample(batch, vocab), "round " + round + " draw " + draw + " in place");
            }
        }
    }

    /** llama2.c's sample_topp with the float arithmetic the sampler documents, sorted with a boxed stable sort. */
    private static int referenceTopP(float[] logits, float temperature, float topp, float coin) {
        int n = logits.length;
        float[] p = new float[n];
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            p[i] = logits[i] / temperature;
            max = Math.max(max, p[i]);
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            p[i] = (float) Math.exp(p[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < n; i++) {
            p[i] /= sum;
        }
        float cutoff = (1f - topp) / (n - 1);
        java.util.List<Integer> idx = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (p[i] >= cutoff) {
                idx.add(i);
            }
        }
        idx.sort((a, b) -> Float.compare(p[b], p[a]));   // List.sort is stable
        float cumulative = 0f;
        int last = idx.size() - 1;
        for (int i = 0; i < idx.size(); i++) {
            cumulative += p[idx.get(i)];
            if (cumulative > topp) {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0f;
        for (int i = 0; i <= last; i++) {
            cdf += p[idx.get(i)];
            if (r < cdf) {
                return idx.get(i);
            }
        }
        return idx.get(last);
    }

    @Test
    void rejectsBadSettings() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, -1f, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, Float.NaN, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 1f, 0.9f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 1f, 0.9f, 1).sample(new float[3]));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 1f, 0.9f, 1).sample(new float[7], 4));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(4, 0f, 0.9f, 1).sample(new float[7], -1));
    }
}
