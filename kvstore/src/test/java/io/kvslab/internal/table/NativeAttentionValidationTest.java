package io.kvslab.internal.table;


import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every argument check of the binding: the call is rejected with {@link KernelArgumentException} (a
 * {@link KvArgumentException}) whose message names the argument, the JVM survives, and the outputs are untouched.
 */
class NativeAttentionValidationTest {
    private static final AttentionShape SHAPE = new AttentionShape(2, 2, 16, 0, 8);
    private static final float SCALE = 0.25f;
    private static final byte SENTINEL = 0x5A;

    private Arena arena;
    private PagedKv kv;
    private MemorySegment q;
    private MemorySegment out;
    private MemorySegment lse;

    @BeforeEach
    void setUp() {
        arena = Arena.ofShared();
        kv = new PagedKv(arena, SHAPE, new long[] {20, 9}, new Random(1), 0, 1.0f);
        q = arena.allocate(JAVA_FLOAT, SHAPE.tokenFloats() * 4); // room for 4 prefill tokens
        for (long i = 0; i < q.byteSize() / 4; i++) {
            q.setAtIndex(JAVA_FLOAT, i, (i % 7) * 0.1f);
        }
        out = arena.allocate(JAVA_FLOAT, SHAPE.tokenFloats() * 4);
        lse = arena.allocate(JAVA_FLOAT, SHAPE.queryHeads());
        out.fill(SENTINEL);
        lse.fill(SENTINEL);
    }

    @AfterEach
    void tearDown() {
        arena.close();
    }

    private void decode(AttentionShape shape, MemorySegment q, MemorySegment kb, MemorySegment vb, MemorySegment off,
                        MemorySegment len, float scale, MemorySegment out, MemorySegment lse, int threads) {
        NativeAttention.decode(shape, q, kb, vb, off, len, scale, out, lse, threads);
    }

    /** The call is rejected, the message mentions `mentions`, and the outputs still hold the sentinel. */
    private void rejected(String mentions, Executable call) {
        KernelArgumentException e = assertThrows(KernelArgumentException.class, call);
        assertInstanceOf(KvArgumentException.class, e);
        assertTrue(e.getMessage().contains(mentions), "message '" + e.getMessage() + "' should mention " + mentions);
        for (long i = 0; i < out.byteSize(); i++) {
            assertEquals(SENTINEL, out.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i), "out was written");
        }
        for (long i = 0; i < lse.byteSize(); i++) {
            assertEquals(SENTINEL, lse.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i), "lse was written");
        }
    }

    private MemorySegment longs(long... values) {
        return arena.allocateFrom(JAVA_LONG, values);
    }

    @Test
    void validCallsPass() {
        decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, lse, 2);
        NativeAttention.decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out,
                MemorySegment.NULL, 1);
        NativeAttention.prefill(SHAPE, 4, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, 2);
    }

    @Test
    void shapeOutOfRange() {
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(0, 1, 8, 0, 32));
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, -1, 8, 0, 32));
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 0, 0, 32));
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 8, 0, 0));
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 65537, 0, 32));
        KernelArgumentException e = assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 8, 5, 32));
        assertTrue(e.getMessage().contains("dtype"));
        // quantised dtypes need a head dim their 32-value groups tile (or below 32; even for q4_0)
        e = assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 48, 3, 32));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 7, 4, 32));
        new AttentionShape(1, 1, 96, 4, 32);
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(1, 1, 8, -1, 32));
        rejected("shape", () -> decode(null, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE,
                out, lse, 1));
    }

    @Test
    void querySegment() {
        rejected("q must not be null", () -> decode(SHAPE, null, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, SCALE, out, lse, 1));
        rejected("q must be a native", () -> decode(SHAPE, MemorySegment.ofArray(new float[64]), kv.keyBlocks,
                kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, lse, 1));
        rejected("q must hold at least 256 bytes", () -> decode(SHAPE, q.asSlice(0, 252), kv.keyBlocks,
                kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, lse, 1));
        rejected("q must hold at least", () -> NativeAttention.prefill(SHAPE, 5, q, kv.keyBlocks, kv.valueBlocks,
                kv.offsets, kv.lengthSegment, SCALE, out, 1));
    }

    @Test
    void outputSegments() {
        rejected("out must hold", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment,
                SCALE, out.asSlice(0, 128), lse, 1));
        rejected("out is written by the kernel but is read-only", () -> decode(SHAPE, q, kv.keyBlocks,
                kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out.asReadOnly(), lse, 1));
        rejected("lse must hold", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment,
                SCALE, out, lse.asSlice(0, 12), 1));
        rejected("lse is written", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, SCALE, out, lse.asReadOnly(), 1));
        rejected("out must be a native", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, SCALE, MemorySegment.ofArray(new float[64]), lse, 1));
        rejected("out must hold", () -> NativeAttention.prefill(SHAPE, 2, q, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, SCALE, out.asSlice(0, 256), 1));
    }

    @Test
    void outputsMustNotOverlapInputs() {
        // out sharing memory with q
        MemorySegment shared = arena.allocate(JAVA_FLOAT, 128);
        MemorySegment q2 = shared.asSlice(0, 256);
        MemorySegment out2 = shared.asSlice(128, 256);
        rejected("out overlaps", () -> decode(SHAPE, q2, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment,
                SCALE, out2, lse, 1));
        // out covering the offsets array: writing it while the kernel reads offsets would corrupt the walk
        MemorySegment big = arena.allocate(256 + 24, 8);
        MemorySegment off = big.asSlice(256, 24);
        off.copyFrom(kv.offsets);
        rejected("out overlaps", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, off, kv.lengthSegment, SCALE,
                big, lse, 1));
        assertEquals(kv.offsets.getAtIndex(JAVA_LONG, 2), off.getAtIndex(JAVA_LONG, 2), "offsets untouched");
        // lse inside out
        KernelArgumentException e = assertThrows(KernelArgumentException.class, () -> decode(SHAPE, q, kv.keyBlocks,
                kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, out.asSlice(0, 16), 1));
        assertTrue(e.getMessage().contains("lse overlaps"), e.getMessage());
        rejected("out overlaps", () -> NativeAttention.prefill(SHAPE, 1, q2, kv.keyBlocks, kv.valueBlocks,
                kv.offsets, kv.lengthSegment, SCALE, out2, 1));
    }

    @Test
    void scaleAndThreads() {
        for (float bad : new float[] {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY}) {
            rejected("scale", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment,
                    bad, out, lse, 1));
        }
        for (int bad : new int[] {0, -3, 65}) {
            rejected("threads", () -> decode(SHAPE, q, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment,
                    SCALE, out, lse, bad));
            rejected("threads", () -> NativeAttention.prefill(SHAPE, 1, q, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                    kv.lengthSegment, SCALE, out, bad));
        }
    }

    @Test
    void blockTable() {
        MemorySegment kb = kv.keyBlocks;
        MemorySegment vb = kv.valueBlocks;
        long blocks = kb.byteSize() / 8; // 3 + 2 = 5 blocks of 8 rows for lengths 20 and 9
        rejected("offsets must hold", () -> decode(SHAPE, q, kb, vb, longs(0, 3), kv.lengthSegment, SCALE, out, lse, 1));
        rejected("lengths must hold", () -> decode(SHAPE, q, kb, vb, kv.offsets, longs(20), SCALE, out, lse, 1));
        rejected("offsets[0] must be >= 0", () -> decode(SHAPE, q, kb, vb, longs(-1, 3, 5), kv.lengthSegment,
                SCALE, out, lse, 1));
        rejected("non-decreasing", () -> decode(SHAPE, q, kb, vb, longs(3, 2, 5), longs(0, 9), SCALE, out, lse, 1));
        rejected("exceeds the block arrays", () -> decode(SHAPE, q, kb, vb, longs(0, 3, blocks + 1),
                kv.lengthSegment, SCALE, out, lse, 1));
        rejected("exceeds the block arrays", () -> decode(SHAPE, q, kb, vb.asSlice(0, 32), kv.offsets,
                kv.lengthSegment, SCALE, out, lse, 1));
        rejected("need 3 blocks", () -> decode(SHAPE, q, kb, vb, longs(0, 2, 5), kv.lengthSegment, SCALE, out, lse,
                1));
        rejected("lengths[1] must be >= 0", () -> decode(SHAPE, q, kb, vb, kv.offsets, longs(20, -1), SCALE, out,
                lse, 1));
        rejected("need 4 blocks", () -> decode(SHAPE, q, kb, vb, kv.offsets, longs(20, 25), SCALE, out, lse, 1));
        MemorySegment withNull = arena.allocate(kb.byteSize(), 8);
        withNull.copyFrom(kb);
        withNull.setAtIndex(JAVA_LONG, 4, 0L);
        rejected("block address 4 (head 1) is null", () -> decode(SHAPE, q, withNull, vb, kv.offsets,
                kv.lengthSegment, SCALE, out, lse, 1));
        rejected("keyBlocks must be a native", () -> decode(SHAPE, q, MemorySegment.ofArray(new long[8]), vb,
                kv.offsets, kv.lengthSegment, SCALE, out, lse, 1));
        rejected("offsets must not be null", () -> decode(SHAPE, q, kb, vb, null, kv.lengthSegment, SCALE, out,
                lse, 1));
    }

    @Test
    void prefillNeedsQueriesAndLongEnoughHeads() {
        rejected("queries must be >= 1", () -> NativeAttention.prefill(SHAPE, 0, q, kv.keyBlocks, kv.valueBlocks,
                kv.offsets, kv.lengthSegment, SCALE, out, 1));
        // head 1 has 9 rows: a 10-token chunk cannot be its last rows
        MemorySegment bigQ = arena.allocate(JAVA_FLOAT, SHAPE.tokenFloats() * 10);
        MemorySegment bigOut = arena.allocate(JAVA_FLOAT, SHAPE.tokenFloats() * 10);
        KernelArgumentException e = assertThrows(KernelArgumentException.class, () -> NativeAttention.prefill(SHAPE,
                10, bigQ, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, bigOut, 1));
        assertTrue(e.getMessage().contains("lengths[1] must be >= 10"), e.getMessage());
    }

    @Test
    void closedAndForeignThreadSegments() throws Exception {
        Arena closed = Arena.ofConfined();
        MemorySegment dead = closed.allocate(JAVA_FLOAT, 64);
        closed.close();
        rejected("closed arena", () -> decode(SHAPE, dead, kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, SCALE, out, lse, 1));
        try (Arena confined = Arena.ofConfined()) {
            MemorySegment mine = confined.allocate(JAVA_FLOAT, 64);
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    decode(SHAPE, mine, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, SCALE, out, lse, 1);
                } catch (Throwable x) {
                    thrown.set(x);
                }
            });
            t.start();
            t.join();
            assertInstanceOf(KernelArgumentException.class, thrown.get());
            assertTrue(thrown.get().getMessage().contains("confined to another thread"));
        }
    }

    @Test
    void probeArguments() {
        rejected("buffer must be a native", () -> NativeAttention.readBandwidthProbe(
                MemorySegment.ofArray(new byte[128]), 1));
        rejected("buffer must hold at least 64 bytes", () -> NativeAttention.readBandwidthProbe(
                arena.allocate(63), 1));
        rejected("threads", () -> NativeAttention.readBandwidthProbe(arena.allocate(4096), 0));
    }
}
