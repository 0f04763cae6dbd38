package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Store settings.
 *
 * @param limitBytes  hard cap on native bytes the store reserves; {@link Long#MAX_VALUE} for none
 * @param slabBytes   size of one slab (rounded down to whole blocks); a few large slabs beat many small ones
 */
public record StoreConfig(long limitBytes, long slabBytes) {
    public static final long DEFAULT_SLAB_BYTES = 16L << 20;

    public StoreConfig {
        if (limitBytes <= 0) {
            throw new KvArgumentException("limitBytes must be > 0, got " + limitBytes);
        }
        if (slabBytes <= 0) {
            throw new KvArgumentException("slabBytes must be > 0, got " + slabBytes);
        }
    }

    /** No limit, {@value #DEFAULT_SLAB_BYTES}-byte slabs. */
    public static StoreConfig defaults() {
        return new StoreConfig(Long.MAX_VALUE, DEFAULT_SLAB_BYTES);
    }

    public StoreConfig withLimitBytes(long limit) {
        return new StoreConfig(limit, slabBytes);
    }

    public StoreConfig withSlabBytes(long bytes) {
        return new StoreConfig(limitBytes, bytes);
    }
}
