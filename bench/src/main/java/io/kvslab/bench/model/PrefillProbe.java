package io.kvslab.bench.model;

import java.util.SplittableRandom;

/**
 * Measures the matrix-product rate a prefill runs at on this machine: one OpenBLAS {@code sgemm} of a chunk of
 * tokens by a square weight matrix of a Llama-3-8B projection ({@code 4096 x 4096}), the product that dominates
 * prefill FLOPs. Used by {@code kvslab bench redis} to price recomputing a prefix against fetching it.
 */
public final class PrefillProbe {
    private final int dim;
    private final int chunk;
    private final float[] w;
    private final float[] x;
    private final float[] out;

    /** A probe of {@code chunk} tokens times a {@code dim x dim} matrix (random values; the rate does not depend on them). */
    public PrefillProbe(int dim, int chunk) {
        this.dim = dim;
        this.chunk = chunk;
        this.w = new float[Math.multiplyExact(dim, dim)];
        this.x = new float[Math.multiplyExact(chunk, dim)];
        this.out = new float[Math.multiplyExact(chunk, dim)];
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() - 0.5);
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() - 0.5);
        }
        MatMul.OPENBLAS.prepare();
    }

    /** GFLOP/s of {@code reps} products (2 x chunk x dim x dim FLOPs each), after one warm-up product. */
    public double gflops(int reps) {
        MatMul.OPENBLAS.multiply(out, x, w, chunk, dim, dim);
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) {
            MatMul.OPENBLAS.multiply(out, x, w, chunk, dim, dim);
        }
        long nanos = System.nanoTime() - t0;
        return 2.0 * chunk * dim * (double) dim * reps / nanos;
    }
}
