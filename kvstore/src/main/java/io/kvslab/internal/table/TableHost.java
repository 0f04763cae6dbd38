package io.kvslab.internal.table;

import io.kvslab.MemoryLimitExceededException;

/**
 * What the block tables of a sequence need from their store: its shared lock (held around every table operation,
 * so compaction and store close wait for them), memory-pressure relief, and event counters. Implemented by the
 * store; takes and returns no block handles.
 */
public interface TableHost {
    /** Takes the store's shared lock; throws {@link io.kvslab.ClosedException} (lock released) if it is closed. */
    void enterShared();

    /** Releases the shared lock taken by {@link #enterShared()}. */
    void exitShared();

    /** Whether the calling thread is running a memory-pressure handler right now. */
    boolean inPressureHandler();

    /**
     * An allocation for {@code requesterId} (-1: none) was refused: runs the pressure handlers. Returns
     * {@code true} if memory was freed (count again and retry), {@code false} if the refusal stands.
     */
    boolean relieve(long requesterId, MemoryLimitExceededException refused, int attempt);

    /** A keep (compression) dropped rows of one (layer, KV head). */
    void compressed(long sequenceId, int layer, int kvHead, int rowsBefore, int rowsAfter, int blocksBefore,
                    int blocksAfter);

    /** Rows removed by a position-range removal. */
    void removed(long rows);

    /** The sequence's tables were closed (its blocks released). */
    void closed(long sequenceId);
}
