package io.kvslab.bench.model;

/**
 * Picks the next token from logits exactly like llama2.c's sampler: the argmax at temperature 0; otherwise logits
 * divided by the temperature, softmax, one coin from the xorshift64* generator, then multinomial sampling (top-p
 * outside (0, 1)) or nucleus sampling (candidates with probability >= (1 - topp) / (n - 1), sorted by descending
 * probability, cut where the cumulative probability first exceeds topp). Not thread-safe: it owns the generator state.
 */
public final class Sampler {
    private final int vocabSize;
    private final float temperature;
    private final float topp;
    private long state;
    private final float[] probs;
    private final int[] order;
    /** The merge sort's second buffer. */
    private final int[] scratch;

    /**
     * @param temperature 0 for greedy decoding, else positive
     * @param topp        nucleus threshold; values outside (0, 1) sample from the whole distribution
     * @param seed        initial generator state (llama2.c's {@code -s}); must not be 0, which xorshift never leaves
     */
    public Sampler(int vocabSize, float temperature, float topp, long seed) {
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabulary size must be positive, got " + vocabSize);
        }
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (Float.isNaN(topp)) {
            throw new IllegalArgumentException("top-p must be a number, got NaN");
        }
        if (seed == 0 && temperature != 0) {
            throw new IllegalArgumentException("seed must not be 0: the xorshift generator would return 0 forever");
        }
        this.vocabSize = vocabSize;
        this.temperature = temperature;
        this.topp = topp;
        this.state = seed;
        this.probs = new float[vocabSize];
        this.order = new int[vocabSize];
        this.scratch = new int[vocabSize];
    }

    /** The next token; {@code logits} is not modified. */
    public int sample(float[] logits) {
        if (logits.length != vocabSize) {
            throw new IllegalArgumentException("expected " + vocabSize + " logits, got " + logits.length);
        }
        return sample(logits, 0);
    }

    /**
     * The next token from {@code logits[offset .. offset + vocabSize)} (one row of a batch's logits, read in place);
     * not modified.
     */
    public int sample(float[] logits, int offset) {
        if (offset < 0 || offset > logits.length - vocabSize) {
            throw new IllegalArgumentException("logits [" + offset + ", " + offset + " + " + vocabSize
                    + ") are outside an array of " + logits.length);
        }
        if (temperature == 0.0f) {
            return argmax(logits, offset, vocabSize);
        }
        for (int i = 0; i < vocabSize; i++) {
            probs[i] = logits[offset + i] / temperature;
        }
        LlamaMath.softmax(probs, 0, vocabSize);
        float coin = randomF32();
        if (topp <= 0 || topp >= 1) {
            return sampleMultinomial(coin);
        }
        return sampleTopP(coin);
    }

    /** Index of the largest value; the first one on ties. */
    public static int argmax(float[] x) {
        return argmax(x, 0, x.length);
    }

    /** Index (from {@code offset}) of the largest of {@code x[offset .. offset + n)}; the first one on ties. */
    private static int argmax(float[] x, int offset, int n) {
        int best = 0;
        float max = x[offset];
        for (int i = 1; i < n; i++) {
            if (x[offset + i] > max) {
                best = i;
                max = x[offset + i];
            }
        }
        return best;
    }

    private int sampleMultinomial(float coin) {
        float cdf = 0.0f;
        for (int i = 0; i < vocabSize; i++) {
            cdf += probs[i];
            if (coin < cdf) {
                return i;
            }
        }
        return vocabSize - 1;
    }

    private int sampleTopP(float coin) {
        float cutoff = (1.0f - topp) / (vocabSize - 1);
        int n0 = 0;
        for (int i = 0; i < vocabSize; i++) {
            if (probs[i] >= cutoff) {
                order[n0++] = i;
            }
        }
        sortByDescendingProbability(n0);
        float cumulative = 0.0f;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++) {
            cumulative += probs[order[i]];
            if (cumulative > topp) {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0.0f;
        for (int i = 0; i <= last; i++) {
            cdf += probs[order[i]];
            if (r < cdf) {
                return order[i];
            }
        }
        return order[last];
    }

    /**
     * Sorts order[0..n) by probability, largest first; stable (equal ones keep index order), like glibc's merge-sort
     * qsort. A bottom-up merge sort on ints: no boxing, no comparator calls, one scratch array per sampler.
     */
    private void sortByDescendingProbability(int n) {
        int[] a = order;
        int[] b = scratch;
        for (int width = 1; width < n; width <<= 1) {
            for (int lo = 0; lo < n; lo += width << 1) {
                int mid = Math.min(lo + width, n);
                int hi = Math.min(lo + (width << 1), n);
                int i = lo;
                int j = mid;
                int k = lo;
                while (i < mid && j < hi) {
                    // the right run's head goes first only if strictly larger: ties keep the left (lower) index first
                    b[k++] = probs[a[j]] > probs[a[i]] ? a[j++] : a[i++];
                }
                while (i < mid) {
                    b[k++] = a[i++];
                }
                while (j < hi) {
                    b[k++] = a[j++];
                }
            }
            int[] t = a;
            a = b;
            b = t;
        }
        if (a != order) {
            System.arraycopy(a, 0, order, 0, n);
        }
    }

    /** llama2.c's random_u32: xorshift64*, upper 32 bits. */
    private int randomU32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
    }

    /** llama2.c's random_f32: 24 random bits scaled into [0, 1). */
    private float randomF32() {
        return (randomU32() >>> 8) / 16777216.0f;
    }
}
