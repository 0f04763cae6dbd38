package io.kvslab.bench.model;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;

/**
 * A {@link KvCache} on the KVSlab store: every layer's keys and values go into a store {@link Sequence}
 * ({@code append} for one token, {@code appendChunk} for a prefill chunk) and attention runs over the sequence's
 * blocks through a {@link SequenceAttention} (the native kernel in the real runner).
 *
 * <p>Between two session calls the caller may compress the sequence ({@link Sequence#retain}) or compact the store:
 * the next token attends over whatever rows remain.
 */
public final class StoreKvCache implements KvCache {
    private final KvStore ownedStore;
    private final Sequence sequence;
    private final SequenceAttention attention;
    private final SequenceAttendPath path;

    /**
     * A cache on a sequence of a store the caller owns; closing the cache closes the sequence and the attention.
     */
    public StoreKvCache(Sequence sequence, SequenceAttention attention) {
        this(null, sequence, attention);
    }

    private StoreKvCache(KvStore ownedStore, Sequence sequence, SequenceAttention attention) {
        this.ownedStore = ownedStore;
        this.sequence = sequence;
        this.attention = attention;
        this.path = SequenceAttendPath.dense(sequence, attention);
    }

    /**
     * Opens a store of the model's geometry with rows of {@code dtype} and one sequence; closing the cache closes
     * them and the attention.
     */
    public static StoreKvCache open(ModelConfig c, DType dtype, SequenceAttention attention) {
        return open(c, dtype, dtype, attention);
    }

    /** Like {@link #open(ModelConfig, DType, SequenceAttention)}, K rows as {@code keyDtype}, V as {@code valueDtype}. */
    public static StoreKvCache open(ModelConfig c, DType keyDtype, DType valueDtype, SequenceAttention attention) {
        KvLayout layout = layout(c, keyDtype).withDtypes(keyDtype, valueDtype);
        long blockBytes = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        // one slab sized for the whole context (at most the default): a small model's session then neither
        // reserves nor zeroes 16 MB it will never use
        long blocksPerContext = (long) c.layers() * c.kvHeads() * 2
                * ((c.contextLength() + layout.tokensPerBlock() - 1) / layout.tokensPerBlock());
        long slab = Math.min(StoreConfig.DEFAULT_SLAB_BYTES, blocksPerContext * blockBytes);
        KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(Math.max(slab, blockBytes)));
        try {
            return new StoreKvCache(store, store.newSequence(), attention);
        } catch (RuntimeException e) {
            store.close();
            attention.close();
            throw e;
        }
    }

    /** The store layout matching a model: its layers, heads and head size. */
    public static KvLayout layout(ModelConfig c, DType dtype) {
        return KvLayout.of(c.layers(), c.heads(), c.kvHeads(), c.headDim(), dtype);
    }

    /** Fails unless the store's layout has the model's layers, heads, kv heads and head size. */
    void requireMatches(ModelConfig c) {
        KvLayout l = sequence.layout();
        if (l.layers() != c.layers() || l.queryHeads() != c.heads() || l.kvHeads() != c.kvHeads()
                || l.headDim() != c.headDim()) {
            throw new IllegalArgumentException("the store's layout " + l + " does not fit the model (layers "
                    + c.layers() + ", heads " + c.heads() + ", kv heads " + c.kvHeads() + ", head size " + c.headDim() + ")");
        }
    }

    /** The sequence holding this cache's rows (for compression between session calls). */
    public Sequence sequence() {
        return sequence;
    }

    /** The store the sequence lives in. */
    public KvStore store() {
        return sequence.store();
    }

    @Override
    public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out) {
        path.attend(layer, q, k, v, positions, n, out);
    }

    @Override
    public void close() {
        try {
            sequence.close();
            attention.close();
        } finally {
            if (ownedStore != null) {
                ownedStore.close();
            }
        }
    }
}
