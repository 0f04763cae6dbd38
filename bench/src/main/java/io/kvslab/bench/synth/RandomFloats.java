package io.kvslab.bench.synth;

/**
 * Cheap deterministic uniform floats (xorshift) standing in for K/V/Q data, for filling stores in demos and benchmarks where the
 * values only need to be finite, varied and reproducible. Values lie in [-1, 1).
 */
public final class RandomFloats {
    private long state;

    public RandomFloats(long seed) {
        this.state = seed == 0 ? 0x9E3779B97F4A7C15L : seed;
    }

    /** Fills {@code dst} with values in [-1, 1). */
    public void fill(float[] dst) {
        long s = state;
        for (int i = 0; i < dst.length; i++) {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            dst[i] = ((s >>> 40) * 0x1.0p-23f) - 1f;
        }
        state = s;
    }
}
