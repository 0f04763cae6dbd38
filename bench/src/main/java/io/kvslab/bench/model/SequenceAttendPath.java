package io.kvslab.bench.model;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/**
 * The one {@link KvCache#attend} path of the store-backed caches ({@link StoreKvCache}, the PoD evaluation's cache):
 * copies the runner's arrays into exactly-sized ones (the store takes exact-length arrays, while the forward pass
 * hands over arrays sized for its largest chunk), then a single token goes to the cache's {@link DecodeStep} and a
 * prefill chunk is appended, handed to {@link AfterChunkAppend} and attended with {@link SequenceAttention#prefill}.
 * Buffers for one token are reused; chunk buffers are reallocated only when the chunk size changes.
 */
public final class SequenceAttendPath {
    /** One decode step: append the token's rows at {@code position} and attend with {@code q} into {@code out}. */
    @FunctionalInterface
    public interface DecodeStep {
        void decode(int layer, float[] q, float[] k, float[] v, long position, float[] out);
    }

    /** Runs after a prefill chunk is appended and before it is attended ({@code first}: its first position). */
    @FunctionalInterface
    public interface AfterChunkAppend {
        void run(int layer, long first);
    }

    private final Sequence sequence;
    private final SequenceAttention attention;
    private final DecodeStep decodeStep;
    private final AfterChunkAppend afterChunkAppend;
    private final int dim;
    private final int kvDim;
    private final float[] q1;
    private final float[] k1;
    private final float[] v1;
    private final float[] out1;
    private int n = -1;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] out;
    private long[] positions;

    public SequenceAttendPath(Sequence sequence, SequenceAttention attention, DecodeStep decodeStep,
                              AfterChunkAppend afterChunkAppend) {
        this.sequence = sequence;
        this.attention = attention;
        this.decodeStep = decodeStep;
        this.afterChunkAppend = afterChunkAppend;
        KvLayout l = sequence.layout();
        this.dim = l.queryHeads() * l.headDim();
        this.kvDim = l.kvHeads() * l.headDim();
        this.q1 = new float[dim];
        this.out1 = new float[dim];
        this.k1 = new float[kvDim];
        this.v1 = new float[kvDim];
    }

    /** The plain path: append, then dense attention over the sequence. */
    public static SequenceAttendPath dense(Sequence sequence, SequenceAttention attention) {
        return new SequenceAttendPath(sequence, attention, (layer, q, k, v, position, out) -> {
            sequence.append(layer, k, v, position);
            attention.decode(sequence, layer, q, out);
        }, (layer, first) -> { });
    }

    /** {@link KvCache#attend}. */
    public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out) {
        if (n == 1) {
            System.arraycopy(k, 0, k1, 0, kvDim);
            System.arraycopy(v, 0, v1, 0, kvDim);
            System.arraycopy(q, 0, q1, 0, dim);
            decodeStep.decode(layer, q1, k1, v1, positions[0], out1);
            System.arraycopy(out1, 0, out, 0, dim);
            return;
        }
        load(q, k, v, positions, n);
        sequence.appendChunk(layer, this.k, this.v, this.positions);
        afterChunkAppend.run(layer, positions[0]);
        attention.prefill(sequence, layer, this.q, n, this.out);
        System.arraycopy(this.out, 0, out, 0, n * dim);
    }

    private void load(float[] q, float[] k, float[] v, long[] positions, int n) {
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
}
