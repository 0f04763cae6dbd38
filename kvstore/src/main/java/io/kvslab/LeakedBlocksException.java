package io.kvslab;

import io.kvslab.KvSlabException;

/**
 * A store was closed while sequences still held blocks. The memory has been returned to the OS anyway; this
 * reports the leak so that callers (and tests) notice a missing {@code Sequence.close()}.
 */
public final class LeakedBlocksException extends KvSlabException {
    /** Blocks still allocated at close. */
    private final long liveBlocks;
    /** Sequences still open at close. */
    private final int openSequences;

    LeakedBlocksException(long liveBlocks, long liveBytes, int openSequences) {
        super("store closed with " + liveBlocks + " live blocks (" + liveBytes + " bytes) in " + openSequences
                + " open sequences; the memory was freed, but close each Sequence before closing its store");
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
