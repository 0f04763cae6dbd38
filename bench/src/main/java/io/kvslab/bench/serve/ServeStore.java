package io.kvslab.bench.serve;

import io.kvslab.KvCacheManager;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.StoreConfig;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.StoreKvCache;

/**
 * The server's one KV store and what hangs off it: the scheduler-facing {@link KvCacheManager}, the
 * {@link PrefixCache} ({@code --prefix-cache}, or on with a shared tier) and the shared prefix tier
 * ({@code --remote-tier} / {@code --disk-tier}). Rows are stored as {@link ServeConfig#keyDtype()} /
 * {@link ServeConfig#valueDtype()} (f32 by default).
 */
final class ServeStore implements AutoCloseable {
    final KvStore store;
    final KvCacheManager manager;
    /** Null without {@code --prefix-cache} or a shared tier. */
    final PrefixCache prefixCache;
    /** Null without {@code --remote-tier} / {@code --disk-tier}; with one, prefixCache is on too. */
    final SharedPrefixes shared;
    /** The salt of every local prefix-cache lookup and insert (the shared tier's when there is one). */
    final long prefixSalt;

    ServeStore(LoadedModel model, ServeConfig config, ServerMetrics metrics, TierOptions tiers) {
        ModelConfig c = model.model().config();
        KvLayout layout = StoreKvCache.layout(c, config.keyDtype()).withDtypes(config.keyDtype(), config.valueDtype());
        this.store = KvStore.open(layout, new StoreConfig(config.kvLimitBytes(), slabBytes(config, layout, c)));
        this.manager = KvCacheManager.of(store);
        boolean tiered = tiers != null && tiers.any();
        this.prefixCache = config.prefixCache() || tiered ? PrefixCache.create(store) : null;
        manager.usePrefixCache(prefixCache);
        try {
            this.shared = tiered ? SharedPrefixes.open(tiers, store, prefixCache, modelId(tiers, model)) : null;
        } catch (RuntimeException e) {
            prefixCache.close();
            store.close();
            throw e;
        }
        this.prefixSalt = shared == null ? 0 : shared.localSalt();
        if (shared != null) {
            metrics.extra = shared::render;
        }
    }

    private static String modelId(TierOptions tiers, LoadedModel model) {
        return tiers.modelId() != null ? tiers.modelId() : SharedPrefixes.modelId(model);
    }

    KvLayout layout() {
        return store.layout();
    }

    /** The given slab size, else one that holds four whole-context sequences (at most the library default). */
    private static long slabBytes(ServeConfig config, KvLayout layout, ModelConfig c) {
        if (config.slabBytes() > 0) {
            return config.slabBytes();
        }
        long perContext = Math.multiplyExact(bytesFor(layout, c.contextLength()), 4L);
        long largestBlock = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        return Math.max(largestBlock, Math.min(StoreConfig.DEFAULT_SLAB_BYTES, perContext));
    }

    /** Block bytes a sequence of {@code tokens} rows takes in every layer and KV head, keys and values. */
    static long bytesFor(KvLayout layout, long tokens) {
        long blocks = (tokens + layout.tokensPerBlock() - 1) / layout.tokensPerBlock();
        long perBlockRow = Math.multiplyExact((long) layout.layers() * layout.kvHeads(),
                Math.addExact(layout.keyBlockBytes(), layout.valueBlockBytes()));
        return Math.multiplyExact(blocks, perBlockRow);
    }

    @Override
    public void close() {
        if (shared != null) {
            shared.close();
        }
        if (prefixCache != null) {
            prefixCache.close();
        }
        store.close();
    }
}
