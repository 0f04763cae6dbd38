package io.kvslab;

import io.kvslab.internal.table.AttentionShape;
import io.kvslab.internal.table.NativeAttention;
import io.kvslab.internal.table.NativeScratch;

import io.kvslab.KvArgumentException;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Attention over a {@link Sequence}'s block tables with the native kernel: decode (one new token) and causal
 * prefill (a chunk just appended). Scale is {@code 1 / sqrt(headDim)}; query head {@code qh} reads KV head
 * {@code qh / groupSize}.
 *
 * <p>An instance owns native scratch (query, output, block-address arrays) that grows to the largest call and is
 * reused, so a decode step allocates nothing. It is not thread-safe: use one per thread. Close it to free the
 * scratch. Each call holds the store's {@link KvStore#readAccess()} while the kernel reads block memory, so a
 * concurrent compaction waits instead of moving blocks under it.
 */
public final class Attention implements AutoCloseable {
    private final int threads;
    /** floats: q then out; longs: key addresses, value addresses, offsets, lengths, lse. */
    private final NativeScratch scratch = new NativeScratch();
    private boolean closed;

    private Attention(int threads) {
        this.threads = threads;
    }

    /** @param threads upper bound on kernel threads, in [1, {@value NativeAttention#MAX_THREADS}] */
    public static Attention create(int threads) {
        if (threads < 1 || threads > NativeAttention.MAX_THREADS) {
            throw new KvArgumentException("threads must be in [1, " + NativeAttention.MAX_THREADS + "], got " + threads);
        }
        return new Attention(threads);
    }

    public int threads() {
        return threads;
    }

    /**
     * Attention of one new token's queries over every row of {@code layer}.
     *
     * @param q   {@code float[queryHeads * headDim]}, RoPE applied, not scaled
     * @param out {@code float[queryHeads * headDim]}, written
     */
    public void decode(Sequence seq, int layer, float[] q, float[] out) {
        decode(seq, layer, q, out, null);
    }

    /**
     * Like {@link #decode(Sequence, int, float[], float[])}, also writing each query head's log-sum-exp of scaled
     * scores into {@code lse[queryHeads]} ({@code -Infinity} for a KV head without rows), so that partial
     * attentions over other key sources can be merged exactly.
     */
    public void decode(Sequence seq, int layer, float[] q, float[] out, float[] lse) {
        KvLayout layout = checkCall(seq, layer, q, out, 1);
        int qh = layout.queryHeads();
        if (lse != null && lse.length != qh) {
            throw new KvArgumentException("lse must have queryHeads = " + qh + " floats, got " + lse.length);
        }
        try (KvStore.ReadAccess ignored = seq.store().readAccess()) {
            Tables t = tables(seq, layer, layout, q.length * 2L);
            long bytes = (long) q.length * Float.BYTES;
            MemorySegment qSeg = scratch.floats().asSlice(0, bytes);
            MemorySegment outSeg = scratch.floats().asSlice(bytes, bytes);
            MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, q.length);
            MemorySegment lseSeg = lse == null ? null : t.lse;
            NativeAttention.decode(AttentionShape.of(layout), qSeg, t.keys, t.values, t.offsets, t.lengths,
                    scale(layout), outSeg, lseSeg, threads);
            MemorySegment.copy(outSeg, JAVA_FLOAT, 0, out, 0, out.length);
            if (lse != null) {
                MemorySegment.copy(lseSeg, JAVA_FLOAT, 0, lse, 0, qh);
            }
        }
    }

    /**
     * Causal attention for the last {@code n} rows of every KV head of {@code layer} (a chunk just appended):
     * query token {@code i} sees rows {@code 0 .. length - n + i}.
     *
     * @param q   {@code float[n * queryHeads * headDim]} laid out [token][query head][dim]
     * @param out same shape, written
     */
    public void prefill(Sequence seq, int layer, float[] q, int n, float[] out) {
        KvLayout layout = checkCall(seq, layer, q, out, n);
        try (KvStore.ReadAccess ignored = seq.store().readAccess()) {
            Tables t = tables(seq, layer, layout, q.length * 2L);
            long bytes = (long) q.length * Float.BYTES;
            MemorySegment qSeg = scratch.floats().asSlice(0, bytes);
            MemorySegment outSeg = scratch.floats().asSlice(bytes, bytes);
            MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, q.length);
            NativeAttention.prefill(AttentionShape.of(layout), n, qSeg, t.keys, t.values, t.offsets, t.lengths,
                    scale(layout), outSeg, threads);
            MemorySegment.copy(outSeg, JAVA_FLOAT, 0, out, 0, out.length);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            scratch.close();
        }
    }

    private static float scale(KvLayout layout) {
        return (float) (1.0 / Math.sqrt(layout.headDim()));
    }

    private KvLayout checkCall(Sequence seq, int layer, float[] q, float[] out, int n) {
        if (closed) {
            throw new KvArgumentException("this Attention is closed; create a new one");
        }
        if (seq == null || q == null || out == null) {
            throw new KvArgumentException("sequence, q and out must not be null");
        }
        KvLayout layout = seq.layout();
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        if (n < 1) {
            throw new KvArgumentException("a prefill chunk needs n >= 1 query tokens, got " + n);
        }
        long expected = (long) n * layout.queryHeads() * layout.headDim();
        if (q.length != expected || out.length != expected) {
            throw new KvArgumentException("q and out must have " + n + " x queryHeads " + layout.queryHeads()
                    + " x headDim " + layout.headDim() + " = " + expected + " floats, got " + q.length + " and "
                    + out.length);
        }
        for (int i = 0; i < q.length; i++) {
            if (!Float.isFinite(q[i])) {
                throw new KvArgumentException("q[" + i + "] = " + q[i] + ": queries must be finite");
            }
        }
        return layout;
    }

    /** Native views of the block tables of one layer, in the scratch buffers. */
    private record Tables(MemorySegment keys, MemorySegment values, MemorySegment offsets, MemorySegment lengths,
                          MemorySegment lse) {
    }

    private Tables tables(Sequence seq, int layer, KvLayout layout, long floatsNeeded) {
        int heads = layout.kvHeads();
        long blocks = 0;
        for (int h = 0; h < heads; h++) {
            blocks += seq.blockCount(layer, h);
        }
        long longsNeeded = 2 * blocks + (heads + 1) + heads + (layout.queryHeads() + 1) / 2;
        scratch.ensure(floatsNeeded, longsNeeded);
        MemorySegment longs = scratch.longs();
        MemorySegment keys = longs.asSlice(0, blocks * Long.BYTES);
        MemorySegment values = longs.asSlice(blocks * Long.BYTES, blocks * Long.BYTES);
        MemorySegment offsets = longs.asSlice(2 * blocks * Long.BYTES, (heads + 1L) * Long.BYTES);
        MemorySegment lengths = longs.asSlice((2 * blocks + heads + 1) * Long.BYTES, (long) heads * Long.BYTES);
        MemorySegment lse = longs.asSlice((2 * blocks + 2L * heads + 1) * Long.BYTES,
                (long) layout.queryHeads() * Float.BYTES);
        long index = 0;
        for (int h = 0; h < heads; h++) {
            offsets.setAtIndex(JAVA_LONG, h, index);
            lengths.setAtIndex(JAVA_LONG, h, seq.length(layer, h));
            index += seq.copyBlockAddresses(layer, h, keys, values, index);
        }
        offsets.setAtIndex(JAVA_LONG, heads, index);
        return new Tables(keys, values, offsets, lengths, lse);
    }
}
