package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayerViewTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F32, 4);

    private static Sequence filled(KvStore store, int tokens) {
        Sequence s = store.newSequence();
        for (int t = 0; t < tokens; t++) {
            float[] k = new float[2 * 8], v = new float[2 * 8];
            for (int i = 0; i < k.length; i++) {
                k[i] = t * 100 + i;
                v[i] = -(t * 100 + i);
            }
            s.append(0, k, v, t);
            s.append(1, v, k, t);
        }
        return s;
    }

    @Test
    void viewShowsTheStoredRowsAndDiesWithItsScope() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = filled(store, 10)) {
            MemorySegment escaped;
            try (LayerView view = s.readLayer(0)) {
                assertEquals(10, view.length(1));
                assertEquals(3, view.blockCount(1));
                float[] expected = new float[10 * 8];
                s.readKeys(0, 1, expected);   // a read on the same thread while the view is open is allowed
                for (int r = 0; r < 10; r++) {
                    MemorySegment block = view.keyBlock(1, r / 4);
                    for (int d = 0; d < 8; d++) {
                        assertEquals(expected[r * 8 + d],
                                block.get(ValueLayout.JAVA_FLOAT, (long) (r % 4) * 32 + 4L * d));
                    }
                }
                assertEquals(-(9 * 100 + 8 + 3), view.valueBlock(1, 2).get(ValueLayout.JAVA_FLOAT, 1L * 32 + 12));
                escaped = view.keyBlock(0, 0);
                assertTrue(escaped.isReadOnly());
                RuntimeException write = assertThrows(RuntimeException.class,
                        () -> view.keyBlock(0, 0).set(ValueLayout.JAVA_FLOAT, 0, 1f));
                assertTrue(write.getMessage().toLowerCase().contains("read"), write.toString());
                assertThrows(KvArgumentException.class, () -> view.keyBlock(0, 3));
                assertThrows(KvSlabException.class, s::close, "closing the sequence while this thread reads it");
            }
            assertThrows(IllegalStateException.class, () -> escaped.get(ValueLayout.JAVA_FLOAT, 0));
        }
    }

    @Test
    void aCloseOnAnotherThreadWaitsForTheView() throws Exception {
        try (KvStore store = KvStore.open(LAYOUT)) {
            Sequence s = filled(store, 10);
            CountDownLatch started = new CountDownLatch(1);
            AtomicLong closedAt = new AtomicLong();
            Thread closer;
            long viewClosedAt;
            try (LayerView view = s.readLayer(1)) {
                closer = new Thread(() -> {
                    started.countDown();
                    s.close();
                    closedAt.set(System.nanoTime());
                });
                closer.start();
                assertTrue(started.await(10, TimeUnit.SECONDS));
                Thread.sleep(200);
                assertFalse(s.isClosed(), "close waits while the view is open");
                assertEquals(10, view.length(0));
                viewClosedAt = System.nanoTime();
            }
            closer.join(10_000);
            assertTrue(s.isClosed());
            assertTrue(closedAt.get() >= viewClosedAt, "the close completed only after the view closed");
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void viewIsConfinedToItsThread() throws Exception {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = filled(store, 3)) {
            try (LayerView view = s.readLayer(0)) {
                Throwable[] seen = new Throwable[1];
                Thread other = new Thread(() -> {
                    try {
                        view.length(0);
                    } catch (Throwable t) {
                        seen[0] = t;
                    }
                });
                other.start();
                other.join();
                assertTrue(seen[0] instanceof ConcurrentUseException, String.valueOf(seen[0]));
            }
            assertThrows(KvArgumentException.class, () -> s.readLayer(2));
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(DType.class)
    void viewReadsRowsAsFloatsInEveryDtype(DType dt) {
        // quantised rows are groups with scales, not elements: the view dequantises them like Sequence.readKeys
        KvLayout layout = new KvLayout(2, 4, 2, 8, dt, 4);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            for (int t = 0; t < 10; t++) {
                float[] k = new float[16], v = new float[16];
                for (int i = 0; i < 16; i++) {
                    k[i] = (float) Math.sin(t + i * 0.7);
                    v[i] = (float) Math.cos(t * 0.3 + i);
                }
                s.append(0, k, v, t);
            }
            float[] keys = new float[10 * 8], values = new float[10 * 8];
            s.readKeys(0, 1, keys);
            s.readValues(0, 1, values);
            try (LayerView view = s.readLayer(0)) {
                float[] got = new float[1 + 7 * 8];
                view.readKeys(1, 2, 7, got, 1);   // rows 2..8: across three blocks
                assertArrayEquals(java.util.Arrays.copyOfRange(keys, 16, 72), java.util.Arrays.copyOfRange(got, 1, 57));
                view.readValues(1, 2, 7, got, 1);
                assertArrayEquals(java.util.Arrays.copyOfRange(values, 16, 72),
                        java.util.Arrays.copyOfRange(got, 1, 57));
                assertThrows(KvArgumentException.class, () -> view.readKeys(1, 5, 6, got, 0), "rows 5..10 of 10");
                assertThrows(KvArgumentException.class, () -> view.readKeys(1, 0, 8, got, 0), "dst too small");
                assertEquals(layout.rowBytes() * 4, view.keyBlock(1, 0).byteSize());
            }
        }
    }
}
