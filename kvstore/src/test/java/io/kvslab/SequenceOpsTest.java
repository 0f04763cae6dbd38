package io.kvslab;

import io.kvslab.internal.table.RawBlocks;
import io.kvslab.KvArgumentException;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sequence operations against an independent reference model: per (layer, KV head) a list of rows, each knowing
 * the position it sits at, the token it came from and the position its key is RoPE-rotated for.
 */
class SequenceOpsTest {
    static final int LAYERS = 2;
    static final int KV_HEADS = 2;
    static final int DIM = 8;
    static final int TPB = 4;
    static final KvLayout F32 = new KvLayout(LAYERS, 4, KV_HEADS, DIM, DType.F32, TPB);
    static final double THETA = 10000.0;

    // ---------------------------------------------------------------- reference model

    /** Unrotated key / value element of the token first appended at position {@code token}. */
    static float raw(int l, int h, long token, int d, boolean key) {
        return (float) Math.cos(0.3 + l * 4.7 + h * 2.3 + token * 0.53 + d * 1.1 + (key ? 0 : 9.0)) * 2f;
    }

    /** Reference RoPE (adjacent pairs), computed directly in double: the key of {@code token} rotated at {@code at}. */
    static float[] key(int l, int h, long token, long at) {
        float[] k = new float[DIM];
        for (int i = 0; i < DIM / 2; i++) {
            double freq = 1.0 / Math.pow(THETA, (2.0 * i) / DIM);
            double a = at * freq;
            double x0 = raw(l, h, token, 2 * i, true);
            double x1 = raw(l, h, token, 2 * i + 1, true);
            k[2 * i] = (float) (x0 * Math.cos(a) - x1 * Math.sin(a));
            k[2 * i + 1] = (float) (x0 * Math.sin(a) + x1 * Math.cos(a));
        }
        return k;
    }

    record Row(long position, long token, long rotatedAt) {}

    /** The model of one sequence: rows per (layer, KV head). */
    static final class Model {
        final List<List<Row>> tables = new ArrayList<>();

        Model() {
            for (int t = 0; t < LAYERS * KV_HEADS; t++) {
                tables.add(new ArrayList<>());
            }
        }

        Model copy() {
            Model m = new Model();
            for (int t = 0; t < tables.size(); t++) {
                m.tables.get(t).addAll(tables.get(t));
            }
            return m;
        }

        List<Row> table(int l, int h) {
            return tables.get(l * KV_HEADS + h);
        }

        long lastPosition(int l) {
            long last = -1;
            for (int h = 0; h < KV_HEADS; h++) {
                List<Row> t = table(l, h);
                if (!t.isEmpty()) {
                    last = Math.max(last, t.get(t.size() - 1).position());
                }
            }
            return last;
        }

        void append(int l, long p) {
            for (int h = 0; h < KV_HEADS; h++) {
                table(l, h).add(new Row(p, p, p));
            }
        }

        void remove(long from, long to) {
            for (List<Row> t : tables) {
                t.removeIf(r -> r.position() >= from && r.position() < to);
            }
        }

        void keep(long from, long to) {
            for (List<Row> t : tables) {
                t.removeIf(r -> r.position() < from || r.position() >= to);
            }
        }

        void shift(long from, long to, long delta, boolean rope) {
            for (List<Row> t : tables) {
                t.replaceAll(r -> r.position() >= from && r.position() < to
                        ? new Row(r.position() + delta, r.token(), rope ? r.rotatedAt() + delta : r.rotatedAt()) : r);
            }
        }

        /** Whether a shift keeps every table's positions >= 0 and strictly increasing. */
        boolean shiftIsValid(long from, long to, long delta) {
            for (List<Row> t : tables) {
                long prev = -1;
                for (Row r : t) {
                    long p = r.position() >= from && r.position() < to ? r.position() + delta : r.position();
                    if (p < 0 || p <= prev) {
                        return false;
                    }
                    prev = p;
                }
            }
            return true;
        }
    }

    static void append(Sequence s, Model m, int l, long p) {
        float[] k = new float[KV_HEADS * DIM];
        float[] v = new float[KV_HEADS * DIM];
        for (int h = 0; h < KV_HEADS; h++) {
            System.arraycopy(key(l, h, p, p), 0, k, h * DIM, DIM);
            for (int d = 0; d < DIM; d++) {
                v[h * DIM + d] = raw(l, h, p, d, false);
            }
        }
        s.append(l, k, v, p);
        m.append(l, p);
    }

    static void appendAll(Sequence s, Model m, long from, long to) {
        for (int l = 0; l < LAYERS; l++) {
            for (long p = from; p < to; p++) {
                append(s, m, l, p);
            }
        }
    }

    /** Positions exactly as the model; values exactly; keys equal to the reference rotation (float tolerance). */
    static void assertMatches(Model m, Sequence s, double keyTolerance) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < KV_HEADS; h++) {
                List<Row> rows = m.table(l, h);
                long[] expectedPositions = rows.stream().mapToLong(Row::position).toArray();
                assertArrayEquals(expectedPositions, s.positions(l, h), "positions of layer " + l + " head " + h);
                float[] k = new float[rows.size() * DIM];
                float[] v = new float[rows.size() * DIM];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                for (int i = 0; i < rows.size(); i++) {
                    Row r = rows.get(i);
                    float[] ek = key(l, h, r.token(), r.rotatedAt());
                    for (int d = 0; d < DIM; d++) {
                        assertEquals(raw(l, h, r.token(), d, false), v[i * DIM + d], "value, layer " + l + " head "
                                + h + " row " + i);
                        assertEquals(ek[d], k[i * DIM + d], keyTolerance, "key, layer " + l + " head " + h
                                + " row " + i + " dim " + d);
                    }
                }
            }
        }
    }

    /** Live bytes are exactly the distinct blocks the given sequences reference (no leak, no double count). */
    static void assertNoLeak(KvStore store, List<Sequence> sequences) {
        Set<Long> blocks = new HashSet<>();
        for (Sequence s : sequences) {
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    for (long id : RawBlocks.blockIds(s, l, h, true)) {
                        blocks.add(id);
                    }
                    for (long id : RawBlocks.blockIds(s, l, h, false)) {
                        blocks.add(id);
                    }
                }
            }
        }
        assertEquals(blocks.size() * store.layout().blockBytes(), store.stats().liveBytes());
    }

    // ---------------------------------------------------------------- randomized against the model

    @Test
    void randomOperationsOnForkedSequencesMatchTheReferenceModel() {
        Random rnd = new Random(42);
        try (KvStore store = KvStore.open(F32)) {
            List<Sequence> seqs = new ArrayList<>();
            List<Model> models = new ArrayList<>();
            Sequence first = store.newSequence();
            Model firstModel = new Model();
            appendAll(first, firstModel, 0, 9);
            seqs.add(first);
            models.add(firstModel);
            for (int step = 0; step < 300; step++) {
                int i = rnd.nextInt(seqs.size());
                Sequence s = seqs.get(i);
                Model m = models.get(i);
                long span = Math.max(1, m.lastPosition(0) + 3);
                int op = rnd.nextInt(9);
                switch (op) {
                    case 0, 1 -> {   // append a token to every layer
                        int n = 1 + rnd.nextInt(5);
                        for (int t = 0; t < n; t++) {
                            for (int l = 0; l < LAYERS; l++) {
                                append(s, m, l, m.lastPosition(l) + 1 + rnd.nextInt(2));
                            }
                        }
                    }
                    case 2 -> {
                        long from = rnd.nextLong(span);
                        long to = rnd.nextBoolean() ? Sequence.END : from + rnd.nextLong(span);
                        long removed = s.removePositions(from, to);
                        long before = m.tables.stream().mapToLong(List::size).sum();
                        m.remove(from, to);
                        assertEquals(before - m.tables.stream().mapToLong(List::size).sum(), removed);
                    }
                    case 3 -> {
                        long from = rnd.nextLong(span);
                        long to = rnd.nextBoolean() ? Sequence.END : from + rnd.nextLong(span);
                        long delta = rnd.nextLong(-8, 9);
                        boolean rope = rnd.nextBoolean();
                        if (m.shiftIsValid(from, to, delta)) {
                            if (rope) {
                                s.shiftPositions(from, to, delta, THETA, 0);
                            } else {
                                s.shiftPositions(from, to, delta);
                            }
                            m.shift(from, to, delta, rope);
                        } else {
                            long live = store.stats().liveBytes();
                            assertThrows(KvArgumentException.class, rope
                                    ? () -> s.shiftPositions(from, to, delta, THETA, 0)
                                    : () -> s.shiftPositions(from, to, delta));
                            assertEquals(live, store.stats().liveBytes());
                        }
                    }
                    case 4 -> {   // compression of one head, like a policy
                        int l = rnd.nextInt(LAYERS);
                        int h = rnd.nextInt(KV_HEADS);
                        List<Row> t = m.table(l, h);
                        List<Integer> keep = new ArrayList<>();
                        for (int r = 0; r < t.size(); r++) {
                            if (rnd.nextInt(3) > 0) {
                                keep.add(r);
                            }
                        }
                        s.keep(l, h, keep.stream().mapToInt(Integer::intValue).toArray());
                        List<Row> kept = new ArrayList<>();
                        for (int r : keep) {
                            kept.add(t.get(r));
                        }
                        t.clear();
                        t.addAll(kept);
                    }
                    case 5 -> {
                        if (seqs.size() < 5) {
                            seqs.add(s.fork());
                            models.add(m.copy());
                        }
                    }
                    case 6 -> {
                        if (seqs.size() < 5) {
                            long from = rnd.nextLong(span);
                            long to = from + 1 + rnd.nextLong(span);
                            seqs.add(s.forkPositions(from, to));
                            Model c = m.copy();
                            c.keep(from, to);
                            models.add(c);
                        }
                    }
                    case 7 -> {   // keep a position range in place (the complement of removePositions)
                        long from = rnd.nextLong(span);
                        long to = rnd.nextBoolean() ? Sequence.END : from + 1 + rnd.nextLong(span);
                        s.keepPositions(from, to);
                        m.keep(from, to);
                    }
                    default -> {
                        if (seqs.size() > 1) {
                            s.close();
                            seqs.remove(i);
                            models.remove(i);
                        }
                    }
                }
                for (int j = 0; j < seqs.size(); j++) {
                    assertMatches(models.get(j), seqs.get(j), 2e-5);
                }
                assertNoLeak(store, seqs);
            }
            seqs.forEach(Sequence::close);
            assertEquals(0, store.stats().liveBytes());
        }
    }

    // ---------------------------------------------------------------- specific behaviour

    @Test
    void removingASuffixOfAForkCopiesNothingAndKeepsBlocksShared() {
        try (KvStore store = KvStore.open(F32); Sequence parent = store.newSequence()) {
            Model pm = new Model();
            appendAll(parent, pm, 0, 10);   // blocks of 4, 4, 2 rows
            try (Sequence child = parent.fork()) {
                Model cm = pm.copy();
                long live = store.stats().liveBytes();
                assertEquals((long) LAYERS * KV_HEADS * 5, child.removePositions(5, Sequence.END));
                cm.remove(5, Sequence.END);
                assertEquals(live, store.stats().liveBytes(), "no block allocated or copied");
                long[] parentKeys = RawBlocks.blockIds(parent, 1, 1, true);
                long[] childKeys = RawBlocks.blockIds(child, 1, 1, true);
                assertArrayEquals(new long[] {parentKeys[0], parentKeys[1]}, childKeys, "still shared");
                // The child's shared partial tail is copied on its next write; the parent is not affected.
                appendAll(child, cm, 5, 7);
                assertMatches(cm, child, 0);
                assertMatches(pm, parent, 0);
                assertEquals(parentKeys[0], RawBlocks.blockIds(child, 1, 1, true)[0]);
                assertNoLeak(store, List.of(parent, child));
            }
        }
    }

    @Test
    void removingAMiddleRangeRebuildsOnlyFromTheFirstTouchedBlock() {
        try (KvStore store = KvStore.open(F32); Sequence parent = store.newSequence()) {
            Model pm = new Model();
            appendAll(parent, pm, 0, 14);   // 4 blocks
            try (Sequence child = parent.fork()) {
                Model cm = pm.copy();
                child.removePositions(6, 9);   // rows 0..5 stay: block 0 untouched
                cm.remove(6, 9);
                long[] parentKeys = RawBlocks.blockIds(parent, 0, 0, true);
                long[] childKeys = RawBlocks.blockIds(child, 0, 0, true);
                assertEquals(3, childKeys.length, "11 rows");
                assertEquals(parentKeys[0], childKeys[0], "the untouched leading block stays shared");
                assertFalse(childKeys[1] == parentKeys[1], "the rewritten region got fresh blocks");
                assertMatches(cm, child, 0);
                assertMatches(pm, parent, 0);
                assertNoLeak(store, List.of(parent, child));
            }
        }
    }

    @Test
    void keepOnlyClosesEveryOtherSequence() {
        try (KvStore store = KvStore.open(F32)) {
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            Model bm = new Model();
            appendAll(a, new Model(), 0, 6);
            appendAll(b, bm, 0, 3);
            Sequence c = b.fork();
            assertEquals(2, b.closeOtherSequences());
            assertTrue(a.isClosed());
            assertTrue(c.isClosed());
            assertEquals(List.of(b), store.sequences());
            assertMatches(bm, b, 0);
            assertNoLeak(store, List.of(b));
            b.close();
            assertThrows(ClosedException.class, b::closeOtherSequences, "a closed sequence keeps nothing");
        }
    }

    @Test
    void streamingWindowRemovesTheMiddleAndReRotatesTheRecentKeys() {
        // StreamingLLM: keep 4 attention sinks and a recent window; shift the window down to follow the sinks.
        for (DType dt : DType.values()) {
            KvLayout layout = new KvLayout(LAYERS, 4, KV_HEADS, DIM, dt, TPB);
            try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
                Model m = new Model();
                appendAll(s, m, 0, 40);
                s.removePositions(4, 30);
                m.remove(4, 30);
                s.shiftPositions(30, Sequence.END, -26, THETA, 0);
                m.shift(30, Sequence.END, -26, true);
                assertArrayEquals(new long[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, s.positions(1, 0));
                double tolerance = switch (dt) {
                    case F32 -> 2e-5;
                    case F16 -> 4e-3;    // stored twice in f16 (before and after rotation)
                    case BF16 -> 3e-2;
                    // Stored, rotated, requantised. Inputs |x| <= 2: the first step d <= 2/127 (q4_0: 2/8, error up
                    // to |d| at ggml's clamp), rotated into either component of its pair (x sqrt 2), plus the second
                    // step's error, whose group max may have grown to 2 sqrt 2 by the rotation.
                    case Q8_0 -> (Math.sqrt(2) * 2 / 127 / 2 + 2 * Math.sqrt(2) / 127 / 2) * 1.01;
                    case Q4_0 -> (Math.sqrt(2) * 2 / 8 + 2 * Math.sqrt(2) / 8) * 1.01;
                };
                if (dt == DType.F32) {
                    assertMatches(m, s, tolerance);
                } else {
                    float[] k = new float[14 * DIM];
                    s.readKeys(1, 0, k);
                    for (int i = 0; i < 14; i++) {
                        Row r = m.table(1, 0).get(i);
                        float[] ek = key(1, 0, r.token(), r.rotatedAt());
                        for (int d = 0; d < DIM; d++) {
                            assertEquals(ek[d], k[i * DIM + d], tolerance);
                        }
                    }
                }
                // Decoding continues right after the window.
                for (int l = 0; l < LAYERS; l++) {
                    append(s, m, l, 14);
                }
                assertEquals(15, s.length(0, 1));
            }
        }
    }

    @Test
    void shiftingSharedKeysCopiesThemFirst() {
        try (KvStore store = KvStore.open(F32); Sequence parent = store.newSequence()) {
            Model pm = new Model();
            appendAll(parent, pm, 0, 8);   // two full blocks per table
            try (Sequence child = parent.fork()) {
                Model cm = pm.copy();
                long live = store.stats().liveBytes();
                child.shiftPositions(4, Sequence.END, 100, THETA, 0);
                cm.shift(4, Sequence.END, 100, true);
                // Only the second K block of each table was copied (values and the first block stay shared).
                assertEquals(live + (long) LAYERS * KV_HEADS * F32.blockBytes(), store.stats().liveBytes());
                assertMatches(cm, child, 2e-5);
                assertMatches(pm, parent, 0);
                assertEquals(RawBlocks.blockIds(parent, 0, 0, false)[1], RawBlocks.blockIds(child, 0, 0, false)[1]);
                // Positions only (no RoPE): keys unchanged, no copy.
                long live2 = store.stats().liveBytes();
                child.shiftPositions(0, 4, 50);
                cm.shift(0, 4, 50, false);
                assertEquals(live2, store.stats().liveBytes());
                assertMatches(cm, child, 2e-5);
                assertNoLeak(store, List.of(parent, child));
            }
        }
    }

    @Test
    void invalidShiftsAreRejectedWithoutChanges() {
        try (KvStore store = KvStore.open(F32); Sequence s = store.newSequence()) {
            Model m = new Model();
            appendAll(s, m, 0, 10);
            s.removePositions(3, 6);
            m.remove(3, 6);
            // Moving 6.. down by 4 would put 6 at 2, below the unshifted 2.
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> s.shiftPositions(6, Sequence.END, -4, THETA, 0));
            assertTrue(e.getMessage().contains("strictly increasing"), e.getMessage());
            assertThrows(KvArgumentException.class, () -> s.shiftPositions(0, 3, 5));
            assertThrows(KvArgumentException.class, () -> s.shiftPositions(0, 3, -1));
            assertThrows(KvArgumentException.class,
                    () -> s.shiftPositions(0, Sequence.END, Long.MAX_VALUE));
            assertThrows(KvArgumentException.class, () -> s.removePositions(5, 4));
            assertThrows(KvArgumentException.class, () -> s.removePositions(-1, 4));
            assertThrows(KvArgumentException.class,
                    () -> s.shiftPositions(0, 1, 1, THETA, 10));
            assertThrows(KvArgumentException.class, () -> s.shiftPositions(0, 1, 1, 0, 0));
            assertThrows(KvArgumentException.class, () -> s.shiftPositions(0, 1, 1, Double.NaN, 0));
            assertThrows(KvArgumentException.class, () -> s.shiftPositions(0, 1, 1, THETA, 3));
            assertMatches(m, s, 0);
            // The exact gap closes fine.
            s.shiftPositions(6, Sequence.END, -3, THETA, 0);
            m.shift(6, Sequence.END, -3, true);
            assertMatches(m, s, 2e-5);
        }
    }

    @Test
    void aReRotatedKeyThatOverflowsF16IsRejected() {
        KvLayout f16 = new KvLayout(1, 1, 1, 2, DType.F16, TPB);
        try (KvStore store = KvStore.open(f16); Sequence s = store.newSequence()) {
            s.append(0, new float[] {1, 1}, new float[] {1, 1}, 0);
            s.append(0, new float[] {60000, 60000}, new float[] {1, 1}, 5);
            // Rotating (60000, 60000) by -1 rad gives x0 = 60000 (cos 1 + sin 1) ~ 82900 > 65504.
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> s.shiftPositions(5, Sequence.END, -1, THETA, 0));
            assertTrue(e.getMessage().contains("re-rotated key"), e.getMessage());
            assertArrayEquals(new long[] {0, 5}, s.positions(0, 0));
            float[] k = new float[4];
            s.readKeys(0, 0, k);
            assertArrayEquals(new float[] {1, 1, 60000, 60000}, k);
        }
    }

    @Test
    void partialRotaryDimsLeaveTheTailUnrotated() {
        try (KvStore store = KvStore.open(F32); Sequence s = store.newSequence()) {
            Model m = new Model();
            appendAll(s, m, 0, 3);
            float[] before = new float[3 * DIM];
            s.readKeys(0, 1, before);
            s.shiftPositions(0, Sequence.END, 7, THETA, 4);
            float[] after = new float[3 * DIM];
            s.readKeys(0, 1, after);
            for (int r = 0; r < 3; r++) {
                for (int d = 4; d < DIM; d++) {
                    assertEquals(before[r * DIM + d], after[r * DIM + d], "dim " + d + " not rotated");
                }
                // Dims 0..3 rotated with rotaryDims = 4: pair i uses theta^(-2i/4).
                for (int i = 0; i < 2; i++) {
                    double a = 7 * Math.pow(THETA, -2.0 * i / 4);
                    double x0 = before[r * DIM + 2 * i];
                    double x1 = before[r * DIM + 2 * i + 1];
                    assertEquals(x0 * Math.cos(a) - x1 * Math.sin(a), after[r * DIM + 2 * i], 1e-5);
                    assertEquals(x0 * Math.sin(a) + x1 * Math.cos(a), after[r * DIM + 2 * i + 1], 1e-5);
                }
            }
        }
    }

    @Test
    void aMemoryLimitDuringAnOperationChangesNothing() {
        long block = F32.blockBytes();
        // Parent: 3 blocks per table x 8 tables = 24 blocks; limit 26 blocks.
        try (KvStore store = KvStore.open(F32, new StoreConfig(26 * block, 64 * block));
             Sequence parent = store.newSequence()) {
            Model pm = new Model();
            appendAll(parent, pm, 0, 12);
            try (Sequence child = parent.fork()) {
                Model cm = pm.copy();
                long live = store.stats().liveBytes();
                // Removing [1, 2) rewrites every table of the shared child into fresh blocks: 24 needed.
                assertThrows(MemoryLimitExceededException.class, () -> child.removePositions(1, 2));
                assertThrows(MemoryLimitExceededException.class,
                        () -> child.shiftPositions(0, Sequence.END, 3, THETA, 0));
                assertEquals(live, store.stats().liveBytes());
                assertMatches(cm, child, 0);
                assertMatches(pm, parent, 0);
                parent.close();   // now the child owns its blocks: the same removal works in place
                child.removePositions(1, 2);
                cm.remove(1, 2);
                assertMatches(cm, child, 0);
            }
        }
    }
}
