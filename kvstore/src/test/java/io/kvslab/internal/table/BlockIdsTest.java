package io.kvslab.internal.table;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The layout of the per-id state words: one word per id, and ids taken close together on different cache lines. */
class BlockIdsTest {
    @Test
    void everyIdOfAPageHasItsOwnStateWord() {
        boolean[] taken = new boolean[BlockIds.PAGE + 2 * BlockIds.GUARD];
        for (int id = 0; id < BlockIds.PAGE; id++) {
            int w = BlockIds.stateIndex(id);
            assertFalse(taken[w], "two ids share word " + w);
            taken[w] = true;
            assertEquals(w, BlockIds.stateIndex(id + 5 * BlockIds.PAGE), "the index depends on the id's page offset only");
        }
    }

    @Test
    void idsLessThan512ApartNeverShareACacheLine() {
        for (int a = 0; a < BlockIds.PAGE; a++) {
            for (int b = a + 1; b < Math.min(BlockIds.PAGE, a + 512); b++) {
                assertNotEquals(BlockIds.stateIndex(a) / 8, BlockIds.stateIndex(b) / 8, "ids " + a + " and " + b);
            }
        }
    }

    @Test
    void noStateWordSharesACacheLineWithTheArrayHeaderOrWhatFollowsTheArray() {
        // the header (mark, class, length: 16 bytes) sits right before word 0, and the length is read by every access;
        // a word at least 64 bytes past the header's end can share no line with it, whatever the array's alignment
        BlockIds ids = new BlockIds();
        ids.grow();
        int length = ids.stateWords(0).length;
        for (int id = 0; id < BlockIds.PAGE; id++) {
            int w = BlockIds.stateIndex(id);
            assertTrue(w * Long.BYTES >= 64, "id " + id + " has word " + w + ", within 64 bytes of the header");
            assertTrue((length - 1 - w) * Long.BYTES >= 64, "id " + id + " has word " + w + " of " + length
                    + ", within 64 bytes of the next object");
        }
    }

    @Test
    void stateWordsKeepGenerationAndCountPerId() {
        BlockIds ids = new BlockIds();
        ids.grow();
        ids.grow();
        for (int id = 0; id < 2 * BlockIds.PAGE; id++) {
            ids.setState(id, BlockIds.pack(id + 1, id % 7));
        }
        for (int id = 0; id < 2 * BlockIds.PAGE; id++) {
            long s = ids.state(id);
            assertEquals(id + 1, BlockIds.generation(s));
            assertEquals(id % 7, BlockIds.references(s));
        }
        ids.setStateRelease(3, BlockIds.pack(9, 1));
        assertEquals(BlockIds.pack(9, 1), ids.state(3));
        assertFalse(ids.compareAndSet(3, BlockIds.pack(9, 0), BlockIds.pack(10, 0)), "a stale expected value fails");
        assertEquals(true, ids.compareAndSet(3, BlockIds.pack(9, 1), BlockIds.pack(10, 0)));
        assertEquals(BlockIds.pack(10, 0), ids.state(3));
        assertEquals(BlockIds.pack(5, 4), ids.state(4), "a neighbour is untouched");
    }
}
