package io.kvslab;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Sequence#END} ({@code Long.MAX_VALUE}) is the open end of every position range, so no row may sit there: a
 * row at END could be neither removed nor kept by any range (removePositions(0, END) left it, keepPositions(0, END)
 * dropped it). Append and shift refuse it; the largest position allowed, END - 1, is reached by ranges.
 */
class PositionRangeEndTest {
    private static final KvLayout LAYOUT = new KvLayout(1, 2, 1, 4, DType.F32, 4);

    private static float[] row(float x) {
        return new float[] {x, x, x, x};
    }

    @Test
    void appendRefusesEndAndAcceptsTheLastPositionBeforeIt() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> s.append(0, row(1), row(1), Sequence.END));
            assertTrue(e.getMessage().contains("[0, Long.MAX_VALUE)") && !e.getMessage().contains("previous"),
                    e.getMessage());
            assertEquals(0, s.length(0, 0), "nothing appended");
            e = assertThrows(KvArgumentException.class, () -> s.append(0, row(1), row(1), -1));
            assertTrue(!e.getMessage().contains("token 0 of the chunk"), "a single-token append has no chunk: "
                    + e.getMessage());

            s.append(0, row(1), row(1), 3);
            s.append(0, row(2), row(2), Sequence.END - 1);
            assertThrows(KvArgumentException.class, () -> s.appendChunk(0, new float[8], new float[8],
                    new long[] {Sequence.END - 1, Sequence.END}));
            assertArrayEquals(new long[] {3, Sequence.END - 1}, s.positions(0, 0));
            assertEquals(1, s.removePositions(10, Sequence.END), "the last position is inside [10, END)");
            assertArrayEquals(new long[] {3}, s.positions(0, 0));
        }
    }

    @Test
    void shiftRefusesToMoveARowOntoEnd() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            s.append(0, row(1), row(1), 0);
            s.append(0, row(2), row(2), 5);
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> s.shiftPositions(5, Sequence.END, Sequence.END - 5));
            assertTrue(e.getMessage().contains("Sequence.END is excluded"), e.getMessage());
            assertArrayEquals(new long[] {0, 5}, s.positions(0, 0), "nothing shifted");
            s.shiftPositions(5, Sequence.END, Sequence.END - 6);
            assertArrayEquals(new long[] {0, Sequence.END - 1}, s.positions(0, 0));
            s.keepPositions(0, Sequence.END);
            assertArrayEquals(new long[] {0, Sequence.END - 1}, s.positions(0, 0), "keep(0, END) keeps every row");
        }
    }
}
