package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An append whose caller memory is closed, or is not the caller's to read, fails with a typed exception and leaves
 * the store as it was: no rows, no blocks attached, every reserved block returned, shared tails still shared. The
 * hard case is memory closed after the values were checked (here by a pressure handler, in a server by another
 * thread cancelling the request): blocks are reserved and attached by then, and must all be given back.
 */
class AppendRollbackTest {
    /** SequenceTest's geometry: 2 layers x 3 KV heads, head dim 8, 4 tokens per block (PressureHandlerTest.LAYOUT). */
    private static final KvLayout LAYOUT = PressureHandlerTest.LAYOUT;
    private static final long BLOCK = PressureHandlerTest.BLOCK;
    private static final int HEADS = 3;
    private static final int DIM = 8;

    /** Tokens [from, to) of layer l as a tensor [token][head][dim] in {@code arena}, SequenceTest's values. */
    private static KvTensor tensor(Arena arena, int l, long from, long to, boolean key) {
        int n = (int) (to - from);
        MemorySegment m = arena.allocate((long) n * HEADS * DIM * Float.BYTES);
        for (int t = 0; t < n; t++) {
            float[] row = SequenceTest.token(l, from + t, key);
            MemorySegment.copy(row, 0, m, ValueLayout.JAVA_FLOAT, (long) t * HEADS * DIM * Float.BYTES, row.length);
        }
        return KvTensor.of(m, DType.F32, n, HEADS, DIM);
    }

    @Test
    void memoryClosedAfterTheCheckLeavesTheStoreAsItWasSharedTailsIncluded() {
        try (KvStore store = KvStore.open(LAYOUT, PressureHandlerTest.TIGHT)) {
            Sequence victim = store.newSequence();
            SequenceTest.fill(victim, 0, 4);                       // 12 blocks
            Sequence parent = store.newSequence();
            SequenceTest.fill(parent, 0, 2);                       // 12 blocks, every tail half full: the store is full
            Sequence child = parent.fork();                        // shares all of them
            Arena arena = Arena.ofShared();
            KvTensor k = tensor(arena, 0, 2, 5, true);
            KvTensor v = tensor(arena, 0, 2, 5, false);
            int[] handlerCalls = {0};
            store.addPressureHandler(p -> {
                handlerCalls[0]++;
                arena.close();                                     // the request's buffers go away mid-append
                return p.tryClose(victim);                         // and the allocation can then succeed
            });
            // child's layer 0 needs private copies of its 3 shared K and V tails and a new block per table: the
            // copies and the attached blocks are all in place when the first row copy finds the memory closed
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> child.appendChunk(0, k, v, SequenceTest.range(2, 5)));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertEquals(1, handlerCalls[0]);
            assertTrue(victim.isClosed());
            assertEquals(12 * BLOCK, store.stats().liveBytes(), "only the shared blocks of parent and child are live");
            for (int h = 0; h < HEADS; h++) {
                assertEquals(2, child.length(0, h));
                assertEquals(1, child.blockCount(0, h));
                SequenceTest.assertHolds(child, 0, h, SequenceTest.range(0, 2));
                SequenceTest.assertHolds(parent, 0, h, SequenceTest.range(0, 2));
            }
            assertEquals(12 * BLOCK, parent.referencedBytes());
            assertEquals(12 * BLOCK, child.referencedBytes());

            // The same append with live memory then works, and the parent still sees only its own rows.
            try (Arena live = Arena.ofConfined()) {
                child.appendChunk(0, tensor(live, 0, 2, 5, true), tensor(live, 0, 2, 5, false),
                        SequenceTest.range(2, 5));
            }
            for (int h = 0; h < HEADS; h++) {
                SequenceTest.assertHolds(child, 0, h, SequenceTest.range(0, 5));
                SequenceTest.assertHolds(parent, 0, h, SequenceTest.range(0, 2));
            }
            child.close();
            parent.close();
            assertEquals(0, store.stats().liveBytes(), "every block returned");
        } // close() would throw LeakedBlocksException for a block the failed append kept
    }

    @Test
    void memoryOfAClosedArenaIsRefusedBeforeAnythingChanges() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            SequenceTest.fill(s, 0, 2);
            long live = store.stats().liveBytes();
            Arena arena = Arena.ofShared();
            KvTensor k = tensor(arena, 0, 2, 4, true);
            KvTensor v = tensor(arena, 0, 2, 4, false);
            arena.close();
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> s.appendChunk(0, k, v, SequenceTest.range(2, 4)));
            assertTrue(e.getMessage().startsWith("k's memory belongs to a closed arena"), e.getMessage());
            assertEquals(live, store.stats().liveBytes());
            SequenceTest.assertHolds(s, 0, 1, SequenceTest.range(0, 2));
        }
    }

    @Test
    void memoryConfinedToAnotherThreadIsRefusedBeforeAnythingChanges() throws Exception {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence();
             Arena mine = Arena.ofConfined()) {
            SequenceTest.fill(s, 0, 2);
            long live = store.stats().liveBytes();
            CompletableFuture<KvTensor> theirs = new CompletableFuture<>();
            CountDownLatch done = new CountDownLatch(1);
            Thread owner = Thread.ofPlatform().start(() -> {
                try (Arena arena = Arena.ofConfined()) {   // v's memory: confined to this thread
                    theirs.complete(tensor(arena, 0, 2, 3, false));
                    done.await();
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            });
            KvTensor v = theirs.get();
            try {
                KvArgumentException e = assertThrows(KvArgumentException.class,
                        () -> s.append(0, tensor(mine, 0, 2, 3, true), v, 2));
                assertTrue(e.getMessage().startsWith("v's memory is confined to another thread"), e.getMessage());
            } finally {
                done.countDown();
                owner.join();
            }
            assertEquals(live, store.stats().liveBytes());
            assertEquals(2, s.length(0, 0));
        }
    }
}
