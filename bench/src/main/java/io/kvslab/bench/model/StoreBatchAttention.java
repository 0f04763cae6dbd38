package io.kvslab.bench.model;

import io.kvslab.Attention;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A decode step's attention over store sequences of one store, one kernel call per layer: every row's keys and
 * values are appended to its {@link Sequence}, then {@link Attention#decodeBatch} attends all the rows that did not
 * fail at once. Each row's result is bitwise what {@link Attention#decode} gives it alone (same thread count), so
 * a request's tokens do not depend on what shares its batch.
 *
 * <p>Should the batched call itself fail (a row's sequence closed under it), the rows are attended one by one so
 * that only the rows at fault are marked failed. Holds scratch for the largest batch seen; one thread.
 */
public final class StoreBatchAttention implements BatchAttention {
    private final Attention attention;
    private final int dim;
    private final int kvDim;
    private final float[] k1;
    private final float[] v1;
    private final List<Sequence> live = new ArrayList<>();
    private Sequence[] rows = new Sequence[0];
    private int[] liveRows = new int[0];
    private float[] qLive = new float[0];
    private float[] outLive = new float[0];

    /** @param attention the kernel (its thread count decides how a long sequence is split), not closed here */
    public StoreBatchAttention(Attention attention, KvLayout layout) {
        this.attention = attention;
        this.dim = layout.queryHeads() * layout.headDim();
        this.kvDim = layout.kvHeads() * layout.headDim();
        this.k1 = new float[kvDim];
        this.v1 = new float[kvDim];
    }

    /** Sets the sequences of the next step's rows: row {@code t} is {@code sequences[t]}. */
    public StoreBatchAttention rows(Sequence[] sequences, int n) {
        if (rows.length < n) {
            rows = new Sequence[n];
            liveRows = new int[n];
            qLive = new float[n * dim];
            outLive = new float[n * dim];
        }
        System.arraycopy(sequences, 0, rows, 0, n);
        return this;
    }

    @Override
    public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out,
                       RuntimeException[] failures) {
        live.clear();
        int m = 0;
        for (int t = 0; t < n; t++) {
            if (failures[t] == null) {
                System.arraycopy(k, t * kvDim, k1, 0, kvDim);
                System.arraycopy(v, t * kvDim, v1, 0, kvDim);
                try {
                    rows[t].append(layer, k1, v1, positions[t]);
                    live.add(rows[t]);
                    liveRows[m++] = t;
                    continue;
                } catch (RuntimeException e) {
                    failures[t] = e;
                }
            }
            Arrays.fill(out, t * dim, (t + 1) * dim, 0.0f);
        }
        if (m == 0) {
            return;
        }
        boolean dense = m == n; // no row dropped: attend straight from and into the forward pass's arrays
        float[] qs = q;
        float[] os = out;
        if (!dense) {
            qs = qLive;
            os = outLive;
            for (int i = 0; i < m; i++) {
                System.arraycopy(q, liveRows[i] * dim, qLive, i * dim, dim);
            }
        }
        long bytes = (long) m * dim * Float.BYTES;
        try {
            attention.decodeBatch(layer, live, MemorySegment.ofArray(qs).asSlice(0, bytes),
                    MemorySegment.ofArray(os).asSlice(0, bytes));
        } catch (RuntimeException batchFailure) {
            rowByRow(layer, q, out, failures, m);
            return;
        }
        if (!dense) {
            for (int i = 0; i < m; i++) {
                System.arraycopy(outLive, i * dim, out, liveRows[i] * dim, dim);
            }
        }
    }

    private void rowByRow(int layer, float[] q, float[] out, RuntimeException[] failures, int m) {
        float[] q1 = new float[dim];
        float[] out1 = new float[dim];
        for (int i = 0; i < m; i++) {
            int t = liveRows[i];
            System.arraycopy(q, t * dim, q1, 0, dim);
            try {
                attention.decode(rows[t], layer, q1, out1);
                System.arraycopy(out1, 0, out, t * dim, dim);
            } catch (RuntimeException e) {
                failures[t] = e;
                Arrays.fill(out, t * dim, (t + 1) * dim, 0.0f);
            }
        }
    }
}
