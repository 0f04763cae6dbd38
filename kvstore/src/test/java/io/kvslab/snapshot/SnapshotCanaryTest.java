package io.kvslab.snapshot;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A snapshot holds exactly the live rows: blocks are reused without being cleared, so another sequence's old rows
 * (a canary value) sit in the unused slots of recycled blocks and in the slots a keep compacted away; none of them
 * may reach the file.
 */
class SnapshotCanaryTest {
    private static final float CANARY = 12345.678f;
    private static final KvLayout LAYOUT = new KvLayout(2, 2, 1, 8, DType.F32, 8);

    @Test
    void recycledBlocksLeakNoCanaryIntoTheFile(@TempDir Path dir) throws IOException {
        Random rnd = new Random(5);
        try (KvStore store = KvStore.open(LAYOUT)) {
            // B fills blocks with the canary and frees them; twice, because the allocator's thread cache hands out
            // the free slots it took ahead (refilled, never written) before the blocks B freed: B's second round
            // writes the canary into those, so every block A can get has held B's rows
            float[] canary = new float[8];
            java.util.Arrays.fill(canary, CANARY);
            for (int round = 0; round < 2; round++) {
                Sequence b = store.newSequence();
                for (int t = 0; t < 40; t++) {
                    b.append(0, canary, canary, t);
                    b.append(1, canary, canary, t);
                }
                b.close();
            }
            // A reuses those blocks: 21 rows per layer leave 3 stale slots in each tail block
            Sequence a = store.newSequence();
            for (int t = 0; t < 21; t++) {
                a.append(0, random(rnd), random(rnd), t);
                a.append(1, random(rnd), random(rnd), t);
            }
            // the setup really recycles: some stale slot of A's blocks still holds the canary
            boolean stale = false;
            try (io.kvslab.LayerView view = a.readLayer(0)) {
                for (int blk = 0; blk < view.blockCount(0); blk++) {
                    java.lang.foreign.MemorySegment seg = view.keyBlock(0, blk);
                    for (long off = 0; off < seg.byteSize(); off += 4) {
                        stale |= seg.get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, off) == CANARY;
                    }
                }
            }
            assertTrue(stale, "no recycled block holds the canary: the test would prove nothing");
            // a keep compacts in place: the slots behind the new length still hold old rows (A's and B's)
            a.keep(1, 0, new int[] {0, 3, 4, 9, 15});
            float[] k0 = new float[21 * 8];
            a.readKeys(0, 0, k0);
            Path file = dir.resolve("a.kvs");
            Snapshots.save(a, file);
            byte[] bytes = Files.readAllBytes(file);
            assertFalse(contains(bytes, CANARY), "the canary of a freed sequence reached the snapshot");
            // and the file restores to exactly A's rows
            Sequence back = Snapshots.restore(store, file);
            float[] k0back = new float[21 * 8];
            back.readKeys(0, 0, k0back);
            assertArrayEquals(k0, k0back);
            assertEquals(5, back.length(1, 0));
            back.close();
            a.close();
        }
    }

    @Test
    void theCheckCanFail(@TempDir Path dir) throws IOException {
        // the same search finds the canary when it is a live row: the assertion above is not vacuous
        try (KvStore store = KvStore.open(LAYOUT); Sequence a = store.newSequence()) {
            float[] canary = new float[8];
            java.util.Arrays.fill(canary, CANARY);
            a.append(0, canary, canary, 0);
            Path file = dir.resolve("live.kvs");
            Snapshots.save(a, file);
            assertTrue(contains(Files.readAllBytes(file), CANARY));
        }
    }

    private static float[] random(Random rnd) {
        float[] x = new float[8];
        for (int i = 0; i < 8; i++) {
            x[i] = rnd.nextFloat() - 0.5f;
        }
        return x;
    }

    private static boolean contains(byte[] hay, float value) {
        int bits = Float.floatToRawIntBits(value);
        for (int i = 0; i + 4 <= hay.length; i++) {
            int v = (hay[i] & 0xFF) | (hay[i + 1] & 0xFF) << 8 | (hay[i + 2] & 0xFF) << 16 | (hay[i + 3] & 0xFF) << 24;
            if (v == bits) {
                return true;
            }
        }
        return false;
    }
}
