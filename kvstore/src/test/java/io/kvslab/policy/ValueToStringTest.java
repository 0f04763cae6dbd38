package io.kvslab.policy;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Value records that hold arrays print their contents (a record's default toString prints array identities). */
class ValueToStringTest {
    @Test
    void resultsSelectionsAndStatsPrintTheirNumbers() {
        CompressionResult r = new CompressionResult(new int[][] {{4, 5}}, new int[][] {{2, 3}});
        assertEquals("CompressionResult[rowsBefore=[[4, 5]], rowsAfter=[[2, 3]], kept 5 rows]", r.toString());
        Selection s = new Selection(new int[][][] {{{0, 3}, {1}}}, new int[][] {{4, 5}});
        assertEquals("Selection[layers=1, kept 3 of 9 rows, lengthsBefore=[[4, 5]]]", s.toString());
        try (KvStore store = KvStore.open(new KvLayout(1, 1, 1, 4, DType.F32, 4)); Sequence q = store.newSequence()) {
            q.append(0, new float[4], new float[4], 0);
            String stats = store.stats().toString();
            assertTrue(stats.contains("slabsByOccupancy=[") && !stats.contains("[I@") && stats.contains("liveBlocks=2"),
                    stats);
        }
    }
}
