package io.kvslab.pod;

import io.kvslab.Attention;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import io.kvslab.internal.table.TableAccess;
import io.kvslab.internal.table.TableAttention;

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
 * <p>Same threading and scratch rules as {@link Attention}: one call at a time per instance (a concurrent call fails
 * with {@link io.kvslab.ConcurrentUseException}), native scratch reused, each call holds the sequence's read lock
 * while the kernels read its blocks; the block tables are read inside the table package, never as addresses.
 */
public final class PodAttention implements AutoCloseable {
    private final TableAttention kernel;

    private PodAttention(int threads) {
        this.kernel = new TableAttention(threads, "PodAttention");
    }

    /**
     * Creates a PoD attention instance whose calls split their work over at most {@code threads} kernel threads.
     * Like {@link Attention}, it is for one thread at a time; close it to free its native scratch.
     *
     * @param threads upper bound on kernel threads, in {@code [1, }{@value Attention#MAX_THREADS}{@code ]}
     * @return a new, open instance
     * @throws KvArgumentException if {@code threads} is out of range
     */
    public static PodAttention create(int threads) {
        return new PodAttention(threads);
    }

    /**
     * PoD v2 through the two-part path: {@code decode(seq, layer, q, q, out)}.
     *
     * @param seq an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @param q {@code float[queryHeads * headDim]}, RoPE applied, not scaled
     * @param out {@code float[queryHeads * headDim]}, written
     */
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
     * @param seq an open sequence
     * @param layer layer index, in {@code [0, layers)}
     */
    public void decode(Sequence seq, int layer, float[] q, float[] qDistant, float[] out) {
        KvLayout layout = check(seq, layer, q, qDistant, out);
        int qh = layout.queryHeads();
        int width = q.length;
        // Per-call partial buffers (small): nothing on the heap is shared between calls, so even a misused
        // instance cannot mix two calls' partial results.
        float[] oP = new float[width];
        float[] oD = new float[width];
        float[] lP = new float[qh];
        float[] lD = new float[qh];
        kernel.podDecode(TableAccess.of(seq), layer, q, qDistant, oP, lP, oD, lD);
        LseMerge.merge(oP, lP, oD, lD, layout.headDim(), out);
    }

    /** Frees the scratch; fails with {@link io.kvslab.ConcurrentUseException} while a call runs. Idempotent. */
    @Override
    public void close() {
        kernel.close();
    }

    private KvLayout check(Sequence seq, int layer, float[] q, float[] qDistant, float[] out) {
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
