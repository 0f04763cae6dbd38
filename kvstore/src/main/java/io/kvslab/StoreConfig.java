package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Store settings.
 *
 * @param limitBytes     hard cap on native bytes the store reserves; {@link Long#MAX_VALUE} for none
 * @param slabBytes      size of one slab (rounded down to whole blocks); a few large slabs beat many small ones
 * @param spareSlabBytes bytes of empty slabs the store keeps mapped for reuse instead of returning them to the OS
 *                       at once ({@code >= 0}; 0 returns every slab as soon as it empties). A compression that
 *                       frees a few slabs and the appends that fill them again then reuse the same memory instead
 *                       of unmapping and mapping it (page faults, the kernel zeroing every page). Spare slabs count
 *                       as reserved bytes and against {@code limitBytes}, are used before a new slab is mapped, and
 *                       are returned to the OS by {@link KvStore#compact()} and by close. They never exceed the
 *                       store's own earlier peak: only a slab that held blocks can become a spare.
 */
public record StoreConfig(long limitBytes, long slabBytes, long spareSlabBytes) {
    public static final long DEFAULT_SLAB_BYTES = 16L << 20;
    /** Default bound on spare slabs: 1 GiB (64 default slabs), what one compression of a long 8B-model context frees. */
    public static final long DEFAULT_SPARE_SLAB_BYTES = 1L << 30;

    /**
     * Checks the values.
     *
     * @throws KvArgumentException if {@code limitBytes} or {@code slabBytes} is not positive, or {@code spareSlabBytes}
     *         is negative
     */
    public StoreConfig {
        if (limitBytes <= 0) {
            throw new KvArgumentException("limitBytes must be > 0, got " + limitBytes);
        }
        if (slabBytes <= 0) {
            throw new KvArgumentException("slabBytes must be > 0, got " + slabBytes);
        }
        if (spareSlabBytes < 0) {
            throw new KvArgumentException("spareSlabBytes must be >= 0, got " + spareSlabBytes);
        }
    }

    /**
     * A limit and a slab size, with the default spare-slab bound {@value #DEFAULT_SPARE_SLAB_BYTES}.
     *
     * @param limitBytes cap on reserved native bytes, {@code > 0}; {@link Long#MAX_VALUE} for none
     * @param slabBytes bytes per slab, {@code > 0}
     */
    public StoreConfig(long limitBytes, long slabBytes) {
        this(limitBytes, slabBytes, DEFAULT_SPARE_SLAB_BYTES);
    }

    /**
     * No limit, {@value #DEFAULT_SLAB_BYTES}-byte slabs, up to {@value #DEFAULT_SPARE_SLAB_BYTES} spare bytes.
     *
     * @return the default configuration
     */
    public static StoreConfig defaults() {
        return new StoreConfig(Long.MAX_VALUE, DEFAULT_SLAB_BYTES, DEFAULT_SPARE_SLAB_BYTES);
    }

    /**
     * This configuration with another memory limit.
     *
     * @param limit cap on reserved native bytes, {@code > 0}; {@link Long#MAX_VALUE} for none
     * @return a new configuration
     */
    public StoreConfig withLimitBytes(long limit) {
        return new StoreConfig(limit, slabBytes, spareSlabBytes);
    }

    /**
     * This configuration with another slab size.
     *
     * @param bytes bytes per slab, {@code > 0}
     * @return a new configuration
     */
    public StoreConfig withSlabBytes(long bytes) {
        return new StoreConfig(limitBytes, bytes, spareSlabBytes);
    }

    /**
     * This configuration with another bound on spare slabs kept mapped for reuse.
     *
     * @param bytes bytes, {@code >= 0}; 0 returns every empty slab at once
     * @return a new configuration
     */
    public StoreConfig withSpareSlabBytes(long bytes) {
        return new StoreConfig(limitBytes, slabBytes, bytes);
    }
}
