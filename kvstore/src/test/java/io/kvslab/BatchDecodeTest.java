package io.kvslab;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import static io.kvslab.SequenceAttentionTest.fill;
import static io.kvslab.SequenceAttentionTest.random;
import static io.kvslab.SequenceAttentionTest.reference;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Attention#decodeBatch}: every row bitwise equal to a single-sequence decode of that row (same thread
 * count), and close to a plain-Java reference computed from what the store holds; sequences of different lengths
 * (0 too), GQA groups, dtypes, forks sharing blocks, the same sequence twice; bad calls rejected with nothing
 * written; two batches locking overlapping sequences in opposite list orders next to a writer do not deadlock.
 * Runs in the native and the java-fallback surefire executions.
 */
class BatchDecodeTest {
    private static final int LAYERS = 2;

    /** (query heads, kv heads): groups 1, 2 and 8. */
    private static final int[][] GEOMETRIES = {{4, 4}, {8, 4}, {8, 1}};

    @ParameterizedTest
    @EnumSource(DType.class)
    void batchRowsEqualPerSequenceDecodeBitwise(DType dtype) {
        for (int[] geo : GEOMETRIES) {
            KvLayout layout = new KvLayout(LAYERS, geo[0], geo[1], 64, dtype, 16);
            for (int batch : new int[] {1, 3, 8}) {
                for (int threads : new int[] {1, 4}) {
                    check(layout, batch, threads, new Random(31L * batch + threads + dtype.ordinal()));
                }
            }
        }
    }

    private static void check(KvLayout layout, int batch, int threads, Random rnd) {
        // lengths from empty to long enough that a single call splits them into chunks merged by log-sum-exp
        int[] lengths = {2100, 0, 37, 700, 1, 256, 90, 300};
        try (KvStore store = KvStore.open(layout); Arena arena = Arena.ofConfined();
             Attention single = Attention.create(threads); Attention batched = Attention.create(threads)) {
            List<Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                if (i == 2 && batch > 2) {
                    // a fork of row 0 that grew its own tail: shares row 0's full blocks
                    Sequence f = seqs.get(0).fork();
                    appendTokens(f, rnd, 19, seqs.get(0).length(0, 0));
                    seqs.add(f);
                    continue;
                }
                Sequence s = store.newSequence();
                if (lengths[i] > 0) {
                    fill(s, rnd, lengths[i]);
                }
                seqs.add(s);
            }
            if (batch == 8) {
                seqs.set(7, seqs.get(3)).close(); // the same sequence twice
                seqs.get(5).keep(1, 0, new int[] {3, 100, 200}); // ragged heads
            }
            int width = layout.queryHeads() * layout.headDim();
            for (int layer = 0; layer < LAYERS; layer++) {
                float[] q = random(rnd, batch * width, 1f);
                MemorySegment qs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, q);
                MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, (long) batch * width);
                MemorySegment lse = arena.allocate(ValueLayout.JAVA_FLOAT, (long) batch * layout.queryHeads());
                batched.decodeBatch(layer, seqs, qs, out, lse);
                float[] heapOut = new float[batch * width];
                batched.decodeBatch(layer, seqs, MemorySegment.ofArray(q), MemorySegment.ofArray(heapOut));
                for (int i = 0; i < batch; i++) {
                    float[] qi = new float[width];
                    System.arraycopy(q, i * width, qi, 0, width);
                    float[] want = new float[width];
                    float[] wantLse = new float[layout.queryHeads()];
                    single.decode(seqs.get(i), layer, qi, want, wantLse);
                    float[] got = out.asSlice((long) i * width * 4, width * 4L).toArray(ValueLayout.JAVA_FLOAT);
                    String what = layout + " batch " + batch + " threads " + threads + " layer " + layer + " row " + i;
                    assertArrayEquals(want, got, what); // bitwise: assertArrayEquals compares floats exactly
                    assertArrayEquals(wantLse, lse.asSlice((long) i * layout.queryHeads() * 4,
                            layout.queryHeads() * 4L).toArray(ValueLayout.JAVA_FLOAT), what + " lse");
                    float[] gotHeap = new float[width];
                    System.arraycopy(heapOut, i * width, gotHeap, 0, width);
                    assertArrayEquals(want, gotHeap, what + " heap tensors");
                    if (threads == 1) { // the 4-thread rows equal the single calls, checked against it elsewhere
                        assertReference(seqs.get(i), layer, qi, got, what);
                    }
                }
            }
            for (Sequence s : new ArrayList<>(new java.util.LinkedHashSet<>(seqs))) {
                s.close();
            }
        }
    }

    /**
     * One {@link Attention} serving single and batched calls on the same sequence, as a server's decode step and
     * its one-off calls may: the batched call writes its address arrays where the single call caches a layer's, so
     * it must drop that cache. It did not (found 2026-12-02): a single decode right after a batch of that one
     * sequence took the batch's descriptors for block addresses and failed with "block address 2 (head 0) is null"
     * (or, with other descriptor contents, would have read memory that is not a block).
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void singleCallsAfterABatchOnTheSameInstanceReadTheirOwnBlocks(int threads) {
        KvLayout layout = new KvLayout(LAYERS, 8, 4, 64, DType.F16, 16);
        Random rnd = new Random(5 + threads);
        try (KvStore store = KvStore.open(layout); Arena arena = Arena.ofConfined();
             Attention att = Attention.create(threads)) {
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            fill(a, rnd, 300);
            fill(b, rnd, 77);
            int width = layout.queryHeads() * layout.headDim();
            float[] q = random(rnd, width, 1f);
            for (int layer = 0; layer < LAYERS; layer++) {
                float[] want = new float[width];
                att.decode(a, layer, q, want);
                for (List<Sequence> batch : List.of(List.of(a), List.of(a, a), List.of(b, a))) {
                    int n = batch.size();
                    MemorySegment qs = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * width);
                    for (int i = 0; i < n; i++) {
                        MemorySegment.copy(q, 0, qs, ValueLayout.JAVA_FLOAT, (long) i * width * 4, width);
                    }
                    MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * width);
                    MemorySegment lse = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * layout.queryHeads());
                    att.decodeBatch(layer, batch, qs, out, lse);
                    float[] after = new float[width];
                    att.decode(a, layer, q, after);
                    String what = "threads " + threads + " layer " + layer + " after a batch of " + n;
                    assertArrayEquals(want, after, what);
                    assertArrayEquals(want, out.asSlice((long) (n - 1) * width * 4, width * 4L)
                            .toArray(ValueLayout.JAVA_FLOAT), what + ": the batch's row of a");
                }
            }
            a.close();
            b.close();
        }
    }

    private static void appendTokens(Sequence s, Random rnd, int tokens, long firstPosition) {
        KvLayout l = s.layout();
        int w = l.kvHeads() * l.headDim();
        long[] pos = new long[tokens];
        for (int i = 0; i < tokens; i++) {
            pos[i] = firstPosition + i;
        }
        for (int layer = 0; layer < l.layers(); layer++) {
            s.appendChunk(layer, random(rnd, tokens * w, 1f), random(rnd, tokens * w, 1f), pos);
        }
    }

    /** The row against double-precision softmax attention over the rows the store reads back. */
    private static void assertReference(Sequence s, int layer, float[] q, float[] out, String what) {
        KvLayout l = s.layout();
        int dim = l.headDim();
        for (int h = 0; h < l.kvHeads(); h++) {
            int len = s.length(layer, h);
            float[] k = new float[len * dim];
            float[] v = new float[len * dim];
            s.readKeys(layer, h, k);
            s.readValues(layer, h, v);
            for (int g = 0; g < l.groupSize(); g++) {
                int qh = h * l.groupSize() + g;
                double[] ref = reference(q, qh * dim, k, v, len, dim);
                for (int d = 0; d < dim; d++) {
                    assertEquals(ref[d], out[qh * dim + d], 2e-5, what + " head " + qh + " dim " + d);
                }
            }
        }
    }

    @Test
    void badBatchesAreRejectedAndWriteNothing() {
        KvLayout layout = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        KvLayout other = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        try (KvStore store = KvStore.open(layout); KvStore store2 = KvStore.open(other);
             Arena arena = Arena.ofConfined(); Attention att = Attention.create(2)) {
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            Sequence foreign = store2.newSequence();
            Random rnd = new Random(5);
            fill(a, rnd, 20);
            fill(b, rnd, 9);
            fill(foreign, rnd, 9);
            int width = 4 * 32;
            MemorySegment q = arena.allocateFrom(ValueLayout.JAVA_FLOAT, random(rnd, 2 * width, 1f));
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, 2L * width);
            out.fill((byte) 0x7f);
            byte[] before = out.toArray(ValueLayout.JAVA_BYTE);
            StoreStats statsBefore = store.stats();

            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, foreign), q, out));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(), q.asSlice(0, 0),
                    out.asSlice(0, 0)));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, null, q, out));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, Collections.singletonList(null), q,
                    out));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(1, List.of(a, b), q, out)); // layer
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a), q, out)); // shape
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, b), q.asSlice(4),
                    out.asSlice(4)));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, b), q, q)); // overlap
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, b), q, out.asReadOnly()));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, b), q, out,
                    arena.allocate(ValueLayout.JAVA_FLOAT, 3)));
            assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, List.of(a, b), q, out, null));
            MemorySegment nan = arena.allocate(q.byteSize());
            nan.copyFrom(q);
            nan.setAtIndex(ValueLayout.JAVA_FLOAT, width + 3, Float.NaN);
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> att.decodeBatch(0, List.of(a, b), nan, out));
            assertTrue(e.getMessage().contains("q[1][0][3]"), e.getMessage());
            assertEquals(statsBefore.liveBytes(), store.stats().liveBytes());
            b.close();
            long liveAfterClose = store.stats().liveBytes();
            assertThrows(ClosedException.class, () -> att.decodeBatch(0, List.of(a, b), q, out));
            assertThrows(ClosedException.class, () -> att.decodeBatch(0, List.of(b, a), q, out));
            assertArrayEquals(before, out.toArray(ValueLayout.JAVA_BYTE), "a rejected call wrote out");
            assertEquals(20, a.length(0, 0));
            assertEquals(liveAfterClose, store.stats().liveBytes());
            // the instance and a's read lock are free again: a good call works and a can be modified
            att.decodeBatch(0, List.of(a, a), q, out);
            a.append(0, random(rnd, 2 * 32, 1f), random(rnd, 2 * 32, 1f), 20);
            foreign.close();
            a.close();
        }
    }

    /**
     * A list that lies about its size, or fails part-way through, is rejected without wedging the instance (the
     * next call and close() work) and without keeping the sequences it named reachable from the instance.
     */
    @Test
    void aFailedBatchLeavesTheInstanceUsableAndHoldsNoSequence() throws Exception {
        KvLayout layout = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        Random rnd = new Random(8);
        int width = 4 * 32;
        try (KvStore store = KvStore.open(layout); Arena arena = Arena.ofConfined()) {
            Attention att = Attention.create(2);
            MemorySegment q = arena.allocateFrom(ValueLayout.JAVA_FLOAT, random(rnd, 2 * width, 1f));
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, 2L * width);
            Sequence a = store.newSequence();
            fill(a, rnd, 20);
            List<Sequence> negative = new java.util.AbstractList<>() {
                @Override
                public Sequence get(int index) {
                    return a;
                }

                @Override
                public int size() {
                    return -1;
                }
            };
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, negative, q, out));
            assertTrue(e.getMessage().contains("size -1"), e.getMessage());
            // a sequence only this failed call saw: once the test drops it, nothing may keep its tables reachable
            java.lang.ref.WeakReference<?> tables = failOnceWith(att, store, rnd, q, out);
            att.decodeBatch(0, List.of(a, a), q, out);
            for (int i = 0; i < 20 && tables.get() != null; i++) {
                System.gc();
                Thread.sleep(10);
            }
            assertNull(tables.get(), "the Attention still references the sequence of a failed batch");
            att.close();
            assertThrows(ClosedException.class, () -> att.decodeBatch(0, List.of(a, a), q, out));
            a.close();
        }
    }

    /** Rejects [b, null] (b filled and closed here) and returns a weak reference to b's tables. */
    private static java.lang.ref.WeakReference<?> failOnceWith(Attention att, KvStore store, Random rnd,
                                                               MemorySegment q, MemorySegment out) {
        Sequence b = store.newSequence();
        fill(b, rnd, 9);
        assertThrows(KvArgumentException.class, () -> att.decodeBatch(0, java.util.Arrays.asList(b, null), q, out));
        b.close();
        return new java.lang.ref.WeakReference<>(b.tables);
    }

    @Test
    @Timeout(120)
    void batchesLockingInOppositeOrdersNextToAWriterFinish() throws Exception {
        KvLayout layout = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        try (KvStore store = KvStore.open(layout)) {
            Random rnd = new Random(3);
            List<Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Sequence s = store.newSequence();
                fill(s, rnd, 50);
                seqs.add(s);
            }
            List<Sequence> reversed = new ArrayList<>(seqs);
            Collections.reverse(reversed);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (List<Sequence> order : List.of(seqs, reversed)) {
                threads.add(Thread.ofPlatform().start(() -> {
                    try (Attention att = Attention.create(1); Arena arena = Arena.ofConfined()) {
                        MemorySegment q = arena.allocateFrom(ValueLayout.JAVA_FLOAT, random(new Random(1), 4 * 128, 1f));
                        MemorySegment out = arena.allocate(q.byteSize());
                        start.await();
                        for (int i = 0; i < 300; i++) {
                            att.decodeBatch(0, order, q, out);
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                    Random r = new Random(2);
                    for (int i = 0; i < 100; i++) {
                        Sequence s = seqs.get(i % 4);
                        s.append(0, random(r, 64, 1f), random(r, 64, 1f), 50 + i / 4);
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
            start.countDown();
            for (Thread t : threads) {
                t.join();
            }
            assertNull(failure.get(), () -> "a thread failed: " + failure.get());
            assertEquals(75, seqs.get(0).length(0, 0));
            seqs.forEach(Sequence::close);
        }
    }
}
