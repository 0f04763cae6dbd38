package io.kvslab.bench.eval.pod;

import io.kvslab.bench.model.ChunkBuffers;
import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import io.kvslab.pod.PodAttention;
import io.kvslab.pod.PodSharing;
import io.kvslab.pod.PodVariant;

/**
 * A runner {@link KvCache} on a store {@link Sequence} with PoD key sharing. Until {@link #startSharing()} it is an
 * ordinary store cache (dense attention; the evaluation prefills the context this way, as for every policy). From then
 * on, every layer call appends the token's rows, demotes the layer's newly distant key blocks to aliases of the base
 * layer's ({@link PodSharing#demote}: the own copies are freed), and attends:
 * <ul>
 *   <li>v2: ordinary attention over the layer's table (own proximal keys, base keys of distant tokens, own values),
 *       which is exactly PoD v2 at block granularity;</li>
 *   <li>v1: {@link PodAttention} with the base layers' queries for the aliased blocks (this token's queries of the
 *       lower layers are kept for that), merged with the own part by log-sum-exp.</li>
 * </ul>
 * A prefill chunk under sharing demotes for the chunk's first query (conservative for the later ones) and runs causal
 * attention over the aliased table (v2 semantics); v1 is decode-only. Closing closes the sequence and the
 * attentions (like {@code StoreKvCache}); the caller closes the store.
 */
public final class PodKvCache implements KvCache {
    private final Sequence sequence;
    private final SequenceAttention attention;
    private final PodAttention podAttention;
    private final PodSharing sharing;
    private final int dim;
    private final int kvDim;
    private final float[] q1;
    private final float[] k1;
    private final float[] v1;
    private final float[] out1;
    private final float[] qDistant;
    /** This token's queries per layer (v1 reads the base layers'). */
    private final float[][] layerQueries;
    private boolean sharingOn;
    private long freedBlocks;
    private final ChunkBuffers chunk;

    /**
     * @param attention    dense attention (the kernel, or plain Java as a reference), closed with this cache
     * @param podAttention the two-part kernel, needed for v1 (may be null for v2), closed with this cache
     */
    public PodKvCache(Sequence sequence, SequenceAttention attention, PodAttention podAttention, PodSharing sharing) {
        if (sequence == null || attention == null || sharing == null) {
            throw new IllegalArgumentException("a PoD cache needs a sequence, an attention and a PodSharing");
        }
        if (sharing.config().variant() == PodVariant.V1_SHARED_SCORES && podAttention == null) {
            throw new IllegalArgumentException("PoD v1 needs a PodAttention (the two-part kernel)");
        }
        KvLayout l = sequence.layout();
        sharing.grouping().requireMatches(l);
        this.sequence = sequence;
        this.attention = attention;
        this.podAttention = podAttention;
        this.sharing = sharing;
        this.dim = l.queryHeads() * l.headDim();
        this.kvDim = l.kvHeads() * l.headDim();
        this.chunk = new ChunkBuffers(dim, kvDim);
        this.q1 = new float[dim];
        this.out1 = new float[dim];
        this.k1 = new float[kvDim];
        this.v1 = new float[kvDim];
        this.qDistant = new float[dim];
        this.layerQueries = new float[l.layers()][dim];
    }

    public Sequence sequence() {
        return sequence;
    }

    public PodSharing sharing() {
        return sharing;
    }

    /**
     * Turns sharing on and demotes every layer for the next query position {@code nextPosition} (the first token the
     * session will feed); returns the K blocks freed.
     */
    public int startSharing(long nextPosition) {
        sharingOn = true;
        int freed = sharing.demoteAll(sequence, nextPosition);
        freedBlocks += freed;
        return freed;
    }

    public boolean sharingStarted() {
        return sharingOn;
    }

    /** K blocks demoted (own copies released) so far. */
    public long freedBlocks() {
        return freedBlocks;
    }

    @Override
    public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out) {
        if (n == 1) {
            System.arraycopy(k, 0, k1, 0, kvDim);
            System.arraycopy(v, 0, v1, 0, kvDim);
            System.arraycopy(q, 0, q1, 0, dim);
            sequence.append(layer, k1, v1, positions[0]);
            if (!sharingOn) {
                attention.decode(sequence, layer, q1, out1);
            } else {
                freedBlocks += sharing.demote(sequence, layer, positions[0]);
                System.arraycopy(q1, 0, layerQueries[layer], 0, dim);
                if (sharing.config().variant() == PodVariant.V1_SHARED_SCORES) {
                    sharing.distantQueries(layer, layerQueries, qDistant);
                    podAttention.decode(sequence, layer, q1, qDistant, out1);
                } else {
                    attention.decode(sequence, layer, q1, out1);
                }
            }
            System.arraycopy(out1, 0, out, 0, dim);
            return;
        }
        if (sharingOn && sharing.config().variant() == PodVariant.V1_SHARED_SCORES) {
            throw new IllegalStateException("PoD v1 runs token by token; feed the tokens after startSharing one at "
                    + "a time");
        }
        chunk.load(q, k, v, positions, n);
        sequence.appendChunk(layer, chunk.k(), chunk.v(), chunk.positions());
        if (sharingOn) {
            freedBlocks += sharing.demote(sequence, layer, positions[0]);
        }
        attention.prefill(sequence, layer, chunk.q(), n, chunk.out());
        chunk.copyOut(out);
    }

    @Override
    public void close() {
        try {
            sequence.close();
            attention.close();
        } finally {
            if (podAttention != null) {
                podAttention.close();
            }
        }
    }
}
