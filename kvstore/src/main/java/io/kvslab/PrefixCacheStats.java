package io.kvslab;

/**
 * Counters of one {@link PrefixCache}.
 *
 * @param entries        cached token blocks (each holds a K and a V block per (layer, KV head))
 * @param cachedBlocks   K/V blocks the cache holds a reference to
 * @param hitBlocks      token blocks served by lookups
 * @param missBlocks     full token blocks looked up and not found
 * @param evictedBlocks  K/V blocks dropped (LRU under capacity or memory pressure, evict, clear)
 */
public record PrefixCacheStats(int entries, long cachedBlocks, long hitBlocks, long missBlocks, long evictedBlocks) {
}
