package io.kvslab;

import io.kvslab.KvSlabException;

/**
 * A store was closed while sequences or prefix caches still held blocks. The memory has been returned to the OS
 * anyway; this reports the leak so that callers (and tests) notice a missing {@code Sequence.close()} or
 * {@code PrefixCache.close()}.
 */
public final class LeakedBlocksException extends KvSlabException {
    /** Blocks still allocated at close. */
    private final long liveBlocks;
    /** Sequences still open at close. */
    private final int openSequences;

    LeakedBlocksException(long liveBlocks, long liveBytes, int openSequences, long prefixCacheBlocks) {
        super("store closed with " + liveBlocks + " live blocks (" + liveBytes + " bytes), held by " + openSequences
                + " open sequences" + (prefixCacheBlocks > 0 ? " and " + prefixCacheBlocks + " blocks of open prefix "
                + "caches" : "") + "; the memory was freed, but close each Sequence"
                + (prefixCacheBlocks > 0 ? " and PrefixCache" : "") + " before closing its store");
        this.liveBlocks = liveBlocks;
        this.openSequences = openSequences;
    }

    /**
     * Blocks the open sequences still held when the store closed (all freed since).
     *
     * @return the block count, {@code >= 1}
     */
    public long liveBlocks() {
        return liveBlocks;
    }

    /**
     * Sequences that were still open when the store closed.
     *
     * @return the sequence count
     */
    public int openSequences() {
        return openSequences;
    }
}
