package io.kvslab.pod;

import io.kvslab.Attention;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/**
 * The PoD decode step of one sequence: append the token's rows, demote the layer's newly distant key blocks to
 * aliases of their base layer's ({@link PodSharing#demote}, own copies freed), and attend:
 * <ul>
 *   <li>before {@link #startSharing}, and for PoD v2: ordinary attention over the layer's table ({@link DenseDecode};
 *       own proximal keys, base keys of distant tokens, own values), which is exactly PoD v2 at block
 *       granularity;</li>
 *   <li>PoD v1: {@code PodAttention}: the own blocks scored with the layer's query, the aliased blocks with the base
 *       layers' queries of the same token ({@link PodSharing#distantQueries}), one softmax over both by log-sum-exp
 *       ({@code LseMerge}).</li>
 * </ul>
 * Layers of one token must be stepped in ascending order (v1 reads the lower base layers' queries of the same
 * token, remembered by {@link #prepare}).
 *
 * <pre>{@code
 * try (PodDecoder pod = PodDecoder.create(sequence, sharing, threads)) {
 *     // ... prefill the context densely (append + Attention.prefill) ...
 *     pod.startSharing(nextPosition);
 *     for each token, for layer = 0 .. layers - 1:
 *         pod.decode(layer, q, k, v, position, out);   // append + demote + v1/v2 attention
 * }
 * }</pre>
 *
 * <p>Owns its native scratch (the dense kernel, unless one is plugged in, and the two-part kernel for v1): one
 * instance per sequence and thread; closing it does not close the sequence.
 */
public final class PodDecoder implements AutoCloseable {
    private final Sequence sequence;
    private final PodSharing sharing;
    private final Attention ownAttention;
    private final DenseDecode dense;
    private final PodAttention twoPart;
    private final float[][] layerQueries;
    private final float[] qDistant;
    private final int width;
    private boolean sharingOn;
    private long freedBlocks;
    private boolean closed;

    private PodDecoder(Sequence sequence, PodSharing sharing, int threads, DenseDecode dense) {
        KvLayout layout = sequence.layout();
        sharing.grouping().requireMatches(layout);
        this.sequence = sequence;
        this.sharing = sharing;
        this.width = Math.multiplyExact(layout.queryHeads(), layout.headDim());
        this.ownAttention = dense == null ? Attention.create(threads) : null;
        this.dense = dense == null ? ownAttention::decode : dense;
        PodAttention two = null;
        try {
            two = sharing.config().variant() == PodVariant.V1_SHARED_SCORES ? PodAttention.create(threads) : null;
        } catch (RuntimeException e) {
            if (ownAttention != null) {
                ownAttention.close();
            }
            throw e;
        }
        this.twoPart = two;
        this.layerQueries = new float[layout.layers()][width];
        this.qDistant = new float[width];
    }

    /**
     * A decoder on the native kernels.
     *
     * @param threads upper bound on kernel threads
     * @param sequence the open sequence to decode; the decoder appends to it and demotes its key blocks
     * @param sharing the grouping, configuration and layout check of this model
     * @return a new decoder, sharing not yet started
     * @throws KvArgumentException if the grouping's geometry is not the sequence's
     */
    public static PodDecoder create(Sequence sequence, PodSharing sharing, int threads) {
        return create(sequence, sharing, threads, null);
    }

    /**
     * A decoder whose ordinary (dense and v2) attention is {@code dense} (null: the native kernel).
     *
     * @param sequence the open sequence to decode
     * @param sharing the grouping, configuration and layout check of this model
     * @param threads upper bound on kernel threads, in {@code [1, Attention.MAX_THREADS]}
     * @param dense the ordinary attention, or {@code null} for the native kernel
     * @return a new decoder, sharing not yet started
     */
    public static PodDecoder create(Sequence sequence, PodSharing sharing, int threads, DenseDecode dense) {
        if (sequence == null || sharing == null) {
            throw new KvArgumentException("a PoD decoder needs a sequence and a PodSharing (got null)");
        }
        return new PodDecoder(sequence, sharing, threads, dense);
    }

    /**
     * The sequence this decoder decodes.
     *
     * @return the sequence given at creation
     */
    public Sequence sequence() {
        return sequence;
    }

    /**
     * The PoD grouping and configuration this decoder applies.
     *
     * @return the sharing given at creation
     */
    public PodSharing sharing() {
        return sharing;
    }

    /**
     * Turns sharing on and demotes every layer for the next query position {@code nextPosition} (the first token
     * decoded with sharing); returns the K blocks freed.
     *
     * @param nextPosition position of the first token decoded with sharing, {@code >= 0}
     * @return K blocks freed by the first demotion
     */
    public int startSharing(long nextPosition) {
        checkOpen();
        sharingOn = true;
        int freed = sharing.demoteAll(sequence, nextPosition);
        freedBlocks += freed;
        return freed;
    }

    /**
     * Whether {@link #startSharing} was called; before it every layer attends densely.
     *
     * @return {@code true} once sharing is on
     */
    public boolean sharingStarted() {
        return sharingOn;
    }

    /**
     * K blocks demoted (own copies released) so far.
     *
     * @return the count of K blocks whose own copies were released, {@code >= 0}
     */
    public long freedBlocks() {
        return freedBlocks;
    }

    /**
     * One token of one layer: appends its rows ({@code k}, {@code v}: {@code [kvHeads][headDim]}) at
     * {@code position}, then {@link #prepare} and {@link #attend}.
     *
     * @param q   {@code [queryHeads][headDim]}, RoPE applied, not scaled
     * @param out same shape, written
     * @param layer layer index, in {@code [0, layers)}
     * @param k keys of the token, {@code [kvHeads][headDim]}, RoPE applied
     * @param v values of the token, {@code [kvHeads][headDim]}
     * @param position the token's absolute position, above every position stored in the layer
     */
    public void decode(int layer, float[] q, float[] k, float[] v, long position, float[] out) {
        checkOpen();
        // every argument the steps after the append read is checked first: a refused call stores nothing
        checkLayer(layer);
        checkWidth("q", q);
        checkWidth("out", out);
        sequence.append(layer, k, v, position);
        prepare(layer, q, position);
        attend(layer, q, out);
    }

    /**
     * For a caller that appended the token's rows itself: demotes the layer's newly distant key blocks (when sharing
     * is on) and remembers the layer's query for the v1 queries of the layers above.
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param q the token's queries, {@code [queryHeads][headDim]}, RoPE applied, not scaled
     * @param position the token's absolute position
     */
    public void prepare(int layer, float[] q, long position) {
        checkOpen();
        checkLayer(layer);
        checkWidth("q", q);
        if (sharingOn) {
            freedBlocks += sharing.demote(sequence, layer, position);
            System.arraycopy(q, 0, layerQueries[layer], 0, width);
        }
    }

    /**
     * The attention of the token whose rows are the layer's last (after {@link #prepare}): dense, v2 or v1.
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param q the token's queries, {@code [queryHeads][headDim]}, RoPE applied, not scaled
     * @param out receives the attention output, same shape as {@code q}
     */
    public void attend(int layer, float[] q, float[] out) {
        checkOpen();
        checkLayer(layer);
        if (sharingOn && twoPart != null) {
            sharing.distantQueries(layer, layerQueries, qDistant);
            twoPart.decode(sequence, layer, q, qDistant, out);
        } else {
            dense.decode(sequence, layer, q, out);
        }
    }

    /**
     * A chunk of several tokens under sharing (prefill-style, v2 semantics): demotes the layer for the chunk's first
     * query (conservative for the later ones); the caller appends and runs causal prefill attention. PoD v1 runs token
     * by token, so it refuses chunks once sharing is on.
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param firstPosition position of the chunk's first token
     * @return K blocks freed
     */
    public int demoteForChunk(int layer, long firstPosition) {
        checkOpen();
        checkLayer(layer);
        if (!sharingOn) {
            return 0;
        }
        if (twoPart != null) {
            throw new KvArgumentException("PoD v1 runs token by token; decode the tokens after startSharing one at a "
                    + "time");
        }
        int freed = sharing.demote(sequence, layer, firstPosition);
        freedBlocks += freed;
        return freed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (ownAttention != null) {
                ownAttention.close();
            }
        } finally {
            if (twoPart != null) {
                twoPart.close();
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new KvArgumentException("this PodDecoder is closed; create a new one");
        }
    }

    private void checkWidth(String name, float[] a) {
        if (a == null || a.length != width) {
            throw new KvArgumentException(name + " must hold queryHeads x headDim = " + width + " floats, got "
                    + (a == null ? "null" : a.length));
        }
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= layerQueries.length) {
            throw new KvArgumentException("layer must be in [0, " + layerQueries.length + "), got " + layer);
        }
    }
}
