package io.kvslab;

import io.kvslab.KvSlabException;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The allocation-failure hook: handlers free memory before the limit exception, and the allocation is retried. */
class PressureHandlerTest {
    /** The layout SequenceTest.fill writes: 2 layers x 3 KV heads, head dim 8, 4 tokens per block. */
    static final KvLayout LAYOUT = new KvLayout(2, 6, 3, 8, DType.F32, 4);
    static final long BLOCK = LAYOUT.blockBytes();
    /** 6 tables x K/V: 4 tokens fill 12 blocks; a 5th token needs 6 more blocks per layer. Room for 24. */
    static final StoreConfig TIGHT = new StoreConfig(24 * BLOCK, 24 * BLOCK);

    @Test
    void aHandlerThatCompressesAnotherSequenceLetsTheAllocationSucceed() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT)) {
            Sequence victim = store.newSequence();
            SequenceTest.fill(victim, 0, 4);       // 12 blocks
            Sequence s = store.newSequence();
            SequenceTest.fill(s, 0, 4);            // 12 blocks: full
            List<MemoryPressure> calls = new ArrayList<>();
            store.addPressureHandler(p -> {
                calls.add(p);
                // A policy-like handler: evict everything in layer 1 of the victim (6 heads' worth of blocks).
                for (int h = 0; h < 3; h++) {
                    victim.keep(1, h, new int[0]);
                }
                return true;
            });
            s.append(0, SequenceTest.token(0, 4, true), SequenceTest.token(0, 4, false), 4);
            SequenceTest.assertHolds(s, 0, 1, SequenceTest.range(0, 5));
            assertEquals(1, calls.size());
            MemoryPressure p = calls.get(0);
            assertSame(store, p.store());
            assertSame(s, p.requester());
            assertEquals(6 * BLOCK, p.requestedBytes());
            assertEquals(6 * BLOCK, p.shortfallBytes(), "nothing was free");
            assertEquals(24 * BLOCK, p.limitBytes());
            assertEquals(24 * BLOCK, p.liveBytes());
            assertEquals(1, p.attempt());
            assertEquals(0, victim.length(1, 2));
            assertEquals(1, store.metrics().pressureEvents());
            assertEquals(1, store.metrics().pressureRelieved());
            victim.close();
            s.close();
        }
    }

    @Test
    void withoutReliefTheLimitExceptionIsRaisedAndNothingChanges() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence();
             Sequence t = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            SequenceTest.fill(t, 0, 4);
            int[] calls = {0};
            store.addPressureHandler(p -> {
                calls[0]++;
                return false;
            });
            long live = store.stats().liveBytes();
            assertThrows(MemoryLimitExceededException.class,
                    () -> s.append(0, SequenceTest.token(0, 4, true), SequenceTest.token(0, 4, false), 4));
            assertEquals(1, calls[0]);
            assertEquals(live, store.stats().liveBytes());
            SequenceTest.assertHolds(s, 0, 0, SequenceTest.range(0, 4));
        }
    }

    @Test
    void retriesAreBoundedWhenAHandlerFreesTooLittle() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            Sequence filler = store.newSequence();
            SequenceTest.fill(filler, 0, 4);
            int[] calls = {0};
            store.addPressureHandler(p -> {
                calls[0]++;
                return true;   // claims relief but frees nothing
            });
            assertThrows(MemoryLimitExceededException.class,
                    () -> s.append(0, SequenceTest.token(0, 4, true), SequenceTest.token(0, 4, false), 4));
            assertEquals(KvStore.MAX_PRESSURE_ROUNDS, calls[0]);
            assertEquals(KvStore.MAX_PRESSURE_ROUNDS, store.metrics().pressureEvents());
            filler.close();
        }
    }

    @Test
    void handlersRunInOrderUntilOneRelieves() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            Sequence a = store.newSequence();
            SequenceTest.fill(a, 0, 4);
            List<String> order = new ArrayList<>();
            store.addPressureHandler(p -> {
                order.add("nothing to give");
                return false;
            });
            store.addPressureHandler(p -> {
                order.add("closer");
                a.close();
                return true;
            });
            java.util.function.Predicate<MemoryPressure> never = p -> {
                order.add("never");
                return true;
            };
            store.addPressureHandler(never);
            SequenceTest.fill(s, 4, 5);
            assertEquals(List.of("nothing to give", "closer"), order);
            assertTrue(store.removePressureHandler(never));
        }
    }

    @Test
    void aHandlerMustNotTouchTheAllocatingSequence() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence();
             Sequence t = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            SequenceTest.fill(t, 0, 4);
            store.addPressureHandler(p -> {
                p.requester().keep(1, 0, new int[0]);
                return true;
            });
            KvSlabException e = assertThrows(KvSlabException.class,
                    () -> s.append(0, SequenceTest.token(0, 4, true), SequenceTest.token(0, 4, false), 4));
            assertTrue(e.getMessage().contains("requester"), e.getMessage());
            SequenceTest.assertHolds(s, 0, 0, SequenceTest.range(0, 4));   // the append wrote nothing
        }
    }

    @Test
    void aFailingHandlerIsAttachedToTheLimitException() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence();
             Sequence t = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            SequenceTest.fill(t, 0, 4);
            store.addPressureHandler(p -> {
                throw new IllegalStateException("policy broke");
            });
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> s.append(0, SequenceTest.token(0, 4, true), SequenceTest.token(0, 4, false), 4));
            assertEquals("policy broke", e.getSuppressed()[0].getMessage());
        }
    }

    @Test
    void allocationsInsideAHandlerDoNotCallTheHandlersAgain() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT); Sequence s = store.newSequence();
             Sequence t = store.newSequence()) {
            SequenceTest.fill(s, 0, 4);
            SequenceTest.fill(t, 0, 4);
            int[] calls = {0};
            store.addPressureHandler(p -> {
                calls[0]++;
                // A handler that itself allocates: this fails at once instead of recursing.
                assertThrows(MemoryLimitExceededException.class, () -> SequenceTest.fill(t, 4, 5));
                return false;
            });
            assertThrows(MemoryLimitExceededException.class, () -> SequenceTest.fill(s, 4, 5));
            assertEquals(1, calls[0]);
        }
    }

    @Test
    void retainOfASharedTableAndForkedAppendsUseTheHookToo() {
        try (KvStore store = KvStore.open(LAYOUT, TIGHT)) {
            Sequence parent = store.newSequence();
            SequenceTest.fill(parent, 0, 6);           // 2 blocks per table = 24 blocks: full
            Sequence child = parent.fork();
            int[] calls = {0};
            store.addPressureHandler(p -> {
                calls[0]++;
                if (!parent.isClosed()) {
                    parent.close();                    // frees nothing: the child still shares every block
                    return true;
                }
                return false;
            });
            // retain on the shared table needs a fresh block; after the parent closed, the table is exclusive
            // and the retry compacts in place.
            child.keep(0, 0, new int[] {1, 2});
            SequenceTest.assertHolds(child, 0, 0, new long[] {1, 2});
            assertEquals(1, calls[0]);
            child.close();
        }
    }
}
