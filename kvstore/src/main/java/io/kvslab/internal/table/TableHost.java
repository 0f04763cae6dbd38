package io.kvslab.internal.table;

import io.kvslab.MemoryLimitExceededException;

/**
 * What the block tables of a sequence need from their store besides its lock ({@link TableStore}): memory-pressure
 * relief and event counters. Implemented by the store; takes and returns no block handles.
 */
public interface TableHost {
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

    /**
     * An append allocated {@code blocks} fresh blocks for sequence {@code sequenceId} (they use up what a scheduler
     * reserved for it; other operations' transient blocks do not).
     */
    default void appended(long sequenceId, int blocks) {
    }

    /** The sequence's tables were closed (its blocks released). */
    void closed(long sequenceId);
}
