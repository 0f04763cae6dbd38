package io.kvslab.pod;

import io.kvslab.Attention;
import io.kvslab.internal.table.AttentionShape;
import io.kvslab.internal.table.NativeAttention;
import io.kvslab.internal.table.NativeScratch;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * PoD decode attention (arXiv 2412.02252) over a layer whose distant key blocks are aliases of a base layer's
 * (see {@link Sequence#shareDistantKeys}): two partial native attentions, merged by log-sum-exp
 * ({@link LseMerge}).
 * <ul>
 *   <li>P part: the table's own K blocks (sinks, recent window, partial tail last) with the layer's query
 *       {@code q};</li>
 *   <li>D part: the aliased K blocks (the base layer's keys of distant tokens) with {@code qDistant};</li>
 * </ul>
 * both with the layer's own values. With {@code qDistant == q} this is PoD v2 (current query on shared keys), which
 * equals ordinary attention over the table ({@link Attention#decode}); with {@code qDistant} = the base layer's
 * query (per KV head, its own base) it is PoD v1 (the base layer's attention scores reused for distant tokens).
 *
 * <p>Same threading and scratch rules as {@link Attention}: one instance per thread, native scratch reused, each call
 * holds the store's {@link KvStore#readAccess()} while the kernel reads blocks.
 */
public final class PodAttention implements AutoCloseable {
    private final int threads;
    /** floats: q, qD, outP, outD, lseP, lseD; longs: P keys, values, offsets, lengths; D the same. */
    private final NativeScratch scratch = new NativeScratch();
    private boolean closed;
    private float[] outP = new float[0];
    private float[] outD = new float[0];
    private float[] lseP = new float[0];
    private float[] lseD = new float[0];

    private PodAttention(int threads) {
        this.threads = threads;
    }

    /** @param threads upper bound on kernel threads, in [1, {@value NativeAttention#MAX_THREADS}] */
    public static PodAttention create(int threads) {
        if (threads < 1 || threads > NativeAttention.MAX_THREADS) {
            throw new KvArgumentException("threads must be in [1, " + NativeAttention.MAX_THREADS + "], got " + threads);
        }
        return new PodAttention(threads);
    }

    /** PoD v2 through the two-part path: {@code decode(seq, layer, q, q, out)}. */
    public void decode(Sequence seq, int layer, float[] q, float[] out) {
        decode(seq, layer, q, q, out);
    }

    /**
     * One new token's attention over every row of {@code layer}: own blocks scored with {@code q}, aliased (shared)
     * blocks scored with {@code qDistant}, values from {@code layer}, one softmax over both (LSE merge).
     *
     * @param q        {@code float[queryHeads * headDim]}: the layer's queries, RoPE applied, not scaled
     * @param qDistant same shape: queries for the aliased blocks ({@code q} for v2, the base layers' for v1)
     * @param out      same shape, written
     */
    public void decode(Sequence seq, int layer, float[] q, float[] qDistant, float[] out) {
        KvLayout layout = check(seq, layer, q, qDistant, out);
        int qh = layout.queryHeads();
        int width = q.length;
        if (outP.length != width) {
            outP = new float[width];
            outD = new float[width];
            lseP = new float[qh];
            lseD = new float[qh];
        }
        try (KvStore.ReadAccess ignored = seq.store().readAccess()) {
            int heads = layout.kvHeads();
            long blocks = 0;
            for (int h = 0; h < heads; h++) {
                blocks += seq.blockCount(layer, h);
            }
            scratch.ensure(4L * width + 2L * qh, 4 * blocks + 2 * (2L * heads + 1));
            long fo = 0;
            MemorySegment qSeg = scratch.floats().asSlice(fo, width * 4L);
            fo += width * 4L;
            MemorySegment qdSeg = scratch.floats().asSlice(fo, width * 4L);
            fo += width * 4L;
            MemorySegment outPSeg = scratch.floats().asSlice(fo, width * 4L);
            fo += width * 4L;
            MemorySegment outDSeg = scratch.floats().asSlice(fo, width * 4L);
            fo += width * 4L;
            MemorySegment lsePSeg = scratch.floats().asSlice(fo, qh * 4L);
            fo += qh * 4L;
            MemorySegment lseDSeg = scratch.floats().asSlice(fo, qh * 4L);
            long lo = 0;
            MemorySegment keysP = scratch.longs().asSlice(lo, blocks * 8);
            lo += blocks * 8;
            MemorySegment valuesP = scratch.longs().asSlice(lo, blocks * 8);
            lo += blocks * 8;
            MemorySegment keysD = scratch.longs().asSlice(lo, blocks * 8);
            lo += blocks * 8;
            MemorySegment valuesD = scratch.longs().asSlice(lo, blocks * 8);
            lo += blocks * 8;
            MemorySegment offsetsP = scratch.longs().asSlice(lo, (heads + 1L) * 8);
            lo += (heads + 1L) * 8;
            MemorySegment lengthsP = scratch.longs().asSlice(lo, heads * 8L);
            lo += heads * 8L;
            MemorySegment offsetsD = scratch.longs().asSlice(lo, (heads + 1L) * 8);
            lo += (heads + 1L) * 8;
            MemorySegment lengthsD = scratch.longs().asSlice(lo, heads * 8L);

            int tpb = layout.tokensPerBlock();
            long p = 0;
            long d = 0;
            for (int h = 0; h < heads; h++) {
                offsetsP.setAtIndex(JAVA_LONG, h, p);
                offsetsD.setAtIndex(JAVA_LONG, h, d);
                int n = seq.blockCount(layer, h);
                int length = seq.length(layer, h);
                long rowsP = 0;
                for (int b = 0; b < n; b++) {
                    long k = seq.keyBlockAddress(layer, h, b);
                    long v = seq.valueBlockAddress(layer, h, b);
                    if (seq.isKeyBlockAliased(layer, h, b)) {
                        // aliases are always full blocks (Sequence refuses to alias a partial tail)
                        keysD.setAtIndex(JAVA_LONG, d, k);
                        valuesD.setAtIndex(JAVA_LONG, d, v);
                        d++;
                    } else {
                        // own blocks keep table order, so the partial tail (if any) comes last
                        keysP.setAtIndex(JAVA_LONG, p, k);
                        valuesP.setAtIndex(JAVA_LONG, p, v);
                        p++;
                        rowsP += Math.min(tpb, length - (long) b * tpb);
                    }
                }
                lengthsP.setAtIndex(JAVA_LONG, h, rowsP);
                lengthsD.setAtIndex(JAVA_LONG, h, length - rowsP);
            }
            offsetsP.setAtIndex(JAVA_LONG, heads, p);
            offsetsD.setAtIndex(JAVA_LONG, heads, d);
            MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, width);
            MemorySegment.copy(qDistant, 0, qdSeg, JAVA_FLOAT, 0, width);
            AttentionShape shape = AttentionShape.of(layout);
            float scale = (float) (1.0 / Math.sqrt(layout.headDim()));
            NativeAttention.decode(shape, qSeg, keysP.asSlice(0, p * 8),
                    valuesP.asSlice(0, p * 8), offsetsP, lengthsP, scale, outPSeg, lsePSeg, threads);
            NativeAttention.decode(shape, qdSeg, keysD.asSlice(0, d * 8), valuesD.asSlice(0, d * 8), offsetsD,
                    lengthsD, scale, outDSeg, lseDSeg, threads);
            MemorySegment.copy(outPSeg, JAVA_FLOAT, 0, outP, 0, width);
            MemorySegment.copy(outDSeg, JAVA_FLOAT, 0, outD, 0, width);
            MemorySegment.copy(lsePSeg, JAVA_FLOAT, 0, lseP, 0, qh);
            MemorySegment.copy(lseDSeg, JAVA_FLOAT, 0, lseD, 0, qh);
        }
        LseMerge.merge(outP, lseP, outD, lseD, layout.headDim(), out);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            scratch.close();
        }
    }

    private KvLayout check(Sequence seq, int layer, float[] q, float[] qDistant, float[] out) {
        if (closed) {
            throw new KvArgumentException("this PodAttention is closed; create a new one");
        }
        if (seq == null || q == null || qDistant == null || out == null) {
            throw new KvArgumentException("sequence, q, qDistant and out must not be null");
        }
        KvLayout layout = seq.layout();
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        int expected = layout.queryHeads() * layout.headDim();
        if (q.length != expected || qDistant.length != expected || out.length != expected) {
            throw new KvArgumentException("q, qDistant and out must have queryHeads " + layout.queryHeads()
                    + " x headDim " + layout.headDim() + " = " + expected + " floats, got " + q.length + ", "
                    + qDistant.length + " and " + out.length);
        }
        finite("q", q);
        finite("qDistant", qDistant);
        return layout;
    }

    private static void finite(String name, float[] x) {
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                throw new KvArgumentException(name + "[" + i + "] = " + x[i] + ": queries must be finite");
            }
        }
    }
}
