package io.kvslab.bench.model;

/**
 * Exactly-sized copies of one prefill chunk. The forward pass hands over arrays sized for its largest chunk, while
 * {@code Sequence.appendChunk} and {@code Attention.prefill} take arrays of exactly {@code n} tokens; the buffers
 * are reallocated only when the chunk size changes.
 */
public final class ChunkBuffers {
    private final int dim;
    private final int kvDim;
    private int n = -1;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] out;
    private long[] positions;

    /** @param dim query width (query heads x head dim); {@code kvDim} key/value width (KV heads x head dim) */
    public ChunkBuffers(int dim, int kvDim) {
        this.dim = dim;
        this.kvDim = kvDim;
    }

    /** Copies the first {@code n} tokens of the inputs into the buffers. */
    public void load(float[] q, float[] k, float[] v, long[] positions, int n) {
        if (this.n != n) {
            this.n = n;
            this.q = new float[n * dim];
            this.out = new float[n * dim];
            this.k = new float[n * kvDim];
            this.v = new float[n * kvDim];
            this.positions = new long[n];
        }
        System.arraycopy(k, 0, this.k, 0, n * kvDim);
        System.arraycopy(v, 0, this.v, 0, n * kvDim);
        System.arraycopy(q, 0, this.q, 0, n * dim);
        System.arraycopy(positions, 0, this.positions, 0, n);
    }

    public float[] q() {
        return q;
    }

    public float[] k() {
        return k;
    }

    public float[] v() {
        return v;
    }

    public long[] positions() {
        return positions;
    }

    /** The attention output of the chunk, {@code n * dim} floats. */
    public float[] out() {
        return out;
    }

    /** Copies the chunk's output into {@code dst}. */
    public void copyOut(float[] dst) {
        System.arraycopy(out, 0, dst, 0, n * dim);
    }
}
