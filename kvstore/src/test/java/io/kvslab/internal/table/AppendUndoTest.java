package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The undo of a failed append for a step that failed half-way: taking a reserved block failed after the shared tail
 * was marked as replaced (found by a review: the undo then released the shared tail the table still pointed at, one
 * reference too few). Undo restores the tables and returns every reserved block, whatever step failed.
 */
class AppendUndoTest {
    @Test
    void aTakeFailingBeforeTheTailCopyLeavesTheSharedTailAndItsReferences() {
        KvLayout layout = new KvLayout(1, 1, 1, 4, DType.F32, 4);
        try (KvStore store = KvStore.open(layout)) {
            Sequence a = store.newSequence();
            float[] row = {1, 2, 3, 4};
            a.append(0, row, row, 0);                  // a partial tail
            Sequence b = a.fork();                     // shared: two references
            SequenceTables st = TableAccess.of(a);
            BlockTable t = st.tables[0][0];
            long keyTail = t.keyBlocks[0];
            long valueTail = t.valueBlocks[0];
            assertEquals(2, st.allocator.refCount(keyTail));
            RowSource.Floats k = new RowSource.Floats(1, 4).of(new float[] {5, 6, 7, 8});
            RowSource.Floats v = new RowSource.Floats(1, 4).of(new float[] {5, 6, 7, 8});
            // no reserved block at all: the first take (the K tail's copy) throws
            assertThrows(IllegalStateException.class,
                    () -> st.writeAppend(st.tables[0], k, v, null, null, 1, FreshBlocks.NONE));
            st.undoAppend(st.tables[0], FreshBlocks.NONE);
            assertEquals(keyTail, t.keyBlocks[0]);
            assertEquals(valueTail, t.valueBlocks[0]);
            assertEquals(1, t.blockCount);
            assertEquals(2, st.allocator.refCount(keyTail), "a and b both still reference the K tail");
            assertEquals(2, st.allocator.refCount(valueTail));
            b.close();
            a.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }
}
