package io.kvslab.reliability;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.snapshot.SnapshotException;
import io.kvslab.snapshot.Snapshots;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.TierRecordException;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Append checks every value before it reserves blocks and copies them afterwards; a caller that writes its buffer
 * in between (another thread, or here deterministically a memory-pressure handler that runs in that gap) can get a
 * NaN into the store. Swap-in and restore refuse non-finite rows, so swap-out and snapshot save must refuse them
 * too, before anything is lost: the sequence stays open with its rows, no tier record and no file is left.
 */
class NonFiniteStoredRowsTest {
    private static final int KV_HEADS = 2;
    private static final int DIM = 64;
    private static final int TOKENS = 64;
    private static final KvLayout LAYOUT = KvLayout.of(1, 4, KV_HEADS, DIM, DType.F32);
    private static final long BLOCK = LAYOUT.keyBlockBytes();

    /** A store whose sequence {@code [1]} holds a NaN at element 5 of layer 0, KV head 0's keys; [0] the store. */
    private static Object[] storeWithNaN() {
        KvStore store = KvStore.open(LAYOUT, StoreConfig.defaults().withLimitBytes(16 * BLOCK)
                .withSlabBytes(16 * BLOCK).withSpareSlabBytes(0));
        long[] positions = LongStream.range(0, TOKENS).toArray();
        float[] zeros = new float[TOKENS * KV_HEADS * DIM];
        Sequence victim = store.newSequence();
        victim.appendChunk(0, zeros, zeros, positions);
        Sequence filler = store.newSequence();
        filler.appendChunk(0, zeros, zeros, positions);      // the store is full
        float[] k = new float[TOKENS * KV_HEADS * DIM];
        float[] v = new float[TOKENS * KV_HEADS * DIM];
        for (int i = 0; i < k.length; i++) {
            k[i] = i * 0.25f;
            v[i] = -i * 0.5f;
        }
        store.addPressureHandler(p -> {
            k[5] = Float.NaN;                                 // after append's check, before its copy
            return p.tryClose(victim);
        });
        Sequence s = store.newSequence();
        s.appendChunk(0, k, v, positions);
        float[] keys = new float[TOKENS * DIM];
        s.readKeys(0, 0, keys);
        assertTrue(Float.isNaN(keys[5]), "the set-up got its NaN into the store");
        filler.close();
        return new Object[] {store, s};
    }

    @Test
    void swapOutRefusesANonFiniteRowAndKeepsTheSequence(@TempDir Path dir) {
        Object[] made = storeWithNaN();
        try (KvStore store = (KvStore) made[0]; Sequence s = (Sequence) made[1];
             DiskTier tier = DiskTier.open(dir, 1 << 26)) {
            float[] before = new float[TOKENS * DIM];
            s.readValues(0, 1, before);
            long live = store.stats().liveBytes();
            TierRecordException e = assertThrows(TierRecordException.class, () -> s.swapOut(tier));
            assertEquals(TierRecordException.Reason.NON_FINITE_VALUE, e.reason());
            assertTrue(e.getMessage().contains("NaN"), e.getMessage());
            assertFalse(s.isClosed(), "the sequence stays in memory");
            assertEquals(TOKENS, s.length(0, 0));
            float[] after = new float[TOKENS * DIM];
            s.readValues(0, 1, after);
            assertArrayEquals(before, after);
            assertEquals(live, store.stats().liveBytes());
            assertEquals(0, tier.records(), "no record is left in the tier");
        }
    }

    /** A pressure handler's trySwapOut passes over such a victim (empty) instead of failing the whole relief. */
    @Test
    void trySwapOutPassesOverANonFiniteVictim(@TempDir Path dir) {
        Object[] made = storeWithNaN();
        try (KvStore store = (KvStore) made[0]; Sequence s = (Sequence) made[1];
             DiskTier tier = DiskTier.open(dir, 1 << 26)) {
            java.util.List<Boolean> swapped = new java.util.ArrayList<>();
            store.addPressureHandler(p -> {
                swapped.add(p.trySwapOut(s, tier).isPresent());
                return false;
            });
            Sequence other = store.newSequence();
            float[] row = new float[KV_HEADS * DIM];
            assertThrows(io.kvslab.MemoryLimitExceededException.class, () -> {
                for (long p = 0; ; p++) {
                    other.append(0, row, row, p);   // until the store is full and the handler runs
                }
            });
            assertTrue(swapped.contains(false) && !swapped.contains(true), swapped.toString());
            assertFalse(s.isClosed());
            assertEquals(0, tier.records());
            other.close();
        }
    }

    @Test
    void snapshotSaveRefusesANonFiniteRowAndWritesNothing(@TempDir Path dir) throws IOException {
        Object[] made = storeWithNaN();
        try (KvStore store = (KvStore) made[0]; Sequence s = (Sequence) made[1]) {
            Path file = dir.resolve("s.kvs");
            SnapshotException e = assertThrows(SnapshotException.class, () -> Snapshots.save(s, file));
            assertEquals(SnapshotException.Reason.UNSUITABLE, e.reason());
            assertTrue(e.getMessage().contains("NaN"), e.getMessage());
            assertFalse(s.isClosed());
            assertEquals(TOKENS, s.length(0, 0));
            try (Stream<Path> left = Files.list(dir)) {
                assertEquals(0, left.count(), "neither the file nor its temporary file is left");
            }
        }
    }
}
