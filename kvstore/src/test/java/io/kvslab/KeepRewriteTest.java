package io.kvslab;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import io.kvslab.policy.Budget;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Sequence#keep} against an independent reference: a plain-Java copy of every row (K and V floats and
 * position) per (layer, KV head). After each keep the stored rows, positions and decode-attention outputs must equal
 * those of the reference bit for bit (attention is compared with a second sequence built by appending only the kept
 * rows, so block placement cannot change a single bit of the result). Covers random keep sets, block-aligned
 * evictions (blocks taken over without copying), StreamingLLM's sinks + recent window, truncations, and forks that
 * share blocks with the sequence being compressed (the fork must not change).
 */
class KeepRewriteTest {
    static final int LAYERS = 2;
    static final int Q_HEADS = 4;
    static final int KV_HEADS = 2;
    static final int DIM = 8;
    static final int TPB = 4;
    static final KvLayout LAYOUT = new KvLayout(LAYERS, Q_HEADS, KV_HEADS, DIM, DType.F32, TPB);

    /** Reference rows of one sequence: per (layer, head) a list of {position, K, V}. */
    static final class Ref {
        final List<List<float[][]>> rows = new ArrayList<>();
        final List<List<Long>> positions = new ArrayList<>();

        Ref() {
            for (int t = 0; t < LAYERS * KV_HEADS; t++) {
                rows.add(new ArrayList<>());
                positions.add(new ArrayList<>());
            }
        }

        Ref copy() {
            Ref r = new Ref();
            for (int t = 0; t < LAYERS * KV_HEADS; t++) {
                r.rows.get(t).addAll(rows.get(t));
                r.positions.get(t).addAll(positions.get(t));
            }
            return r;
        }

        int length(int l, int h) {
            return rows.get(l * KV_HEADS + h).size();
        }

        void keep(int l, int h, int[] keep) {
            List<float[][]> r = rows.get(l * KV_HEADS + h);
            List<Long> p = positions.get(l * KV_HEADS + h);
            List<float[][]> nr = new ArrayList<>();
            List<Long> np = new ArrayList<>();
            for (int i : keep) {
                nr.add(r.get(i));
                np.add(p.get(i));
            }
            r.clear();
            r.addAll(nr);
            p.clear();
            p.addAll(np);
        }
    }

    /** Appends {@code n} random rows at positions from {@code position} to every layer of both. */
    static void append(Sequence s, Ref ref, Random rnd, int n, long position) {
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < LAYERS; l++) {
                float[] k = new float[KV_HEADS * DIM];
                float[] v = new float[KV_HEADS * DIM];
                for (int j = 0; j < k.length; j++) {
                    k[j] = (float) rnd.nextGaussian();
                    v[j] = (float) rnd.nextGaussian();
                }
                s.append(l, k, v, position + i);
                for (int h = 0; h < KV_HEADS; h++) {
                    ref.rows.get(l * KV_HEADS + h).add(new float[][] {
                            Arrays.copyOfRange(k, h * DIM, (h + 1) * DIM), Arrays.copyOfRange(v, h * DIM, (h + 1) * DIM)});
                    ref.positions.get(l * KV_HEADS + h).add(position + i);
                }
            }
        }
    }

    /** Stored rows and positions equal the reference bit for bit. */
    static void assertMatches(Sequence s, Ref ref, String what) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < KV_HEADS; h++) {
                int n = ref.length(l, h);
                assertEquals(n, s.length(l, h), what + ": length of layer " + l + " head " + h);
                long[] expectedPos = ref.positions.get(l * KV_HEADS + h).stream().mapToLong(Long::longValue).toArray();
                assertArrayEquals(expectedPos, s.positions(l, h), what + ": positions of layer " + l + " head " + h);
                float[] k = new float[n * DIM];
                float[] v = new float[n * DIM];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                float[] ek = new float[n * DIM];
                float[] ev = new float[n * DIM];
                for (int r = 0; r < n; r++) {
                    float[][] row = ref.rows.get(l * KV_HEADS + h).get(r);
                    System.arraycopy(row[0], 0, ek, r * DIM, DIM);
                    System.arraycopy(row[1], 0, ev, r * DIM, DIM);
                }
                assertArrayEquals(ek, k, what + ": keys of layer " + l + " head " + h);
                assertArrayEquals(ev, v, what + ": values of layer " + l + " head " + h);
            }
        }
    }

    /**
     * Decode attention over {@code s} equals decode attention over a sequence holding only the reference rows
     * (appended head by head in order, so its blocks are laid out from scratch).
     */
    static void assertAttentionMatches(KvStore store, Attention attention, Sequence s, Ref ref, Random rnd) {
        // Per-head lengths may differ; rebuild with each head's own rows by appending and then keeping.
        int max = 0;
        for (int t = 0; t < LAYERS * KV_HEADS; t++) {
            max = Math.max(max, ref.rows.get(t).size());
        }
        try (Sequence fresh = store.newSequence()) {
            for (int l = 0; l < LAYERS; l++) {
                for (int i = 0; i < max; i++) {
                    float[] k = new float[KV_HEADS * DIM];
                    float[] v = new float[KV_HEADS * DIM];
                    for (int h = 0; h < KV_HEADS; h++) {
                        List<float[][]> rows = ref.rows.get(l * KV_HEADS + h);
                        if (i < rows.size()) {
                            System.arraycopy(rows.get(i)[0], 0, k, h * DIM, DIM);
                            System.arraycopy(rows.get(i)[1], 0, v, h * DIM, DIM);
                        }
                    }
                    fresh.append(l, k, v, i);
                }
                int[][] keep = new int[KV_HEADS][];
                for (int h = 0; h < KV_HEADS; h++) {
                    keep[h] = new int[ref.length(l, h)];
                    for (int i = 0; i < keep[h].length; i++) {
                        keep[h][i] = i;
                    }
                }
                fresh.keep(l, keep);   // a pure truncation per head: writes nothing
            }
            for (int l = 0; l < LAYERS; l++) {
                float[] q = new float[Q_HEADS * DIM];
                for (int j = 0; j < q.length; j++) {
                    q[j] = (float) rnd.nextGaussian();
                }
                float[] a = new float[q.length];
                float[] b = new float[q.length];
                attention.decode(s, l, q, a);
                attention.decode(fresh, l, q, b);
                assertArrayEquals(b, a, "attention of layer " + l);
            }
        }
    }

    static int[] randomKeep(Random rnd, int n) {
        List<Integer> k = new ArrayList<>();
        double p = rnd.nextDouble();
        for (int i = 0; i < n; i++) {
            if (rnd.nextDouble() < p) {
                k.add(i);
            }
        }
        return k.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Sinks, then the newest rows; the dropped range is {@code [sinks, n - recent)}. */
    static int[] sinksAndRecent(int n, int sinks, int recent) {
        int[] k = new int[sinks + recent];
        for (int i = 0; i < sinks; i++) {
            k[i] = i;
        }
        for (int i = 0; i < recent; i++) {
            k[sinks + i] = n - recent + i;
        }
        return k;
    }

    @Test
    void randomKeepSetsWithAndWithoutForksMatchTheReference() {
        Random rnd = new Random(7);
        try (KvStore store = KvStore.open(LAYOUT); Attention attention = Attention.create(1)) {
            for (int round = 0; round < 40; round++) {
                Sequence s = store.newSequence();
                Ref ref = new Ref();
                int n = 1 + rnd.nextInt(40);
                append(s, ref, rnd, n, 0);
                Sequence fork = null;
                Ref forkRef = null;
                if (rnd.nextBoolean()) {
                    fork = s.fork();
                    forkRef = ref.copy();
                }
                for (int step = 0; step < 3; step++) {
                    int l = rnd.nextInt(LAYERS);
                    int[][] keep = new int[KV_HEADS][];
                    for (int h = 0; h < KV_HEADS; h++) {
                        int len = ref.length(l, h);
                        keep[h] = switch (rnd.nextInt(3)) {
                            case 0 -> randomKeep(rnd, len);
                            case 1 -> sinksAndRecent(len, Math.min(len, rnd.nextInt(3)),
                                    Math.max(0, len - Math.min(len, rnd.nextInt(3)) - TPB * rnd.nextInt(3)));
                            default -> sinksAndRecent(len, 0, len - Math.min(len, TPB * rnd.nextInt(3)));
                        };
                        if (keep[h].length > len) {
                            keep[h] = randomKeep(rnd, len);
                        }
                    }
                    s.keep(l, keep);
                    for (int h = 0; h < KV_HEADS; h++) {
                        ref.keep(l, h, keep[h]);
                    }
                    assertMatches(s, ref, "round " + round + " step " + step);
                    if (fork != null) {
                        assertMatches(fork, forkRef, "fork, round " + round + " step " + step);
                    }
                    long last = 0;
                    for (int t = 0; t < LAYERS * KV_HEADS; t++) {
                        for (long p : ref.positions.get(t)) {
                            last = Math.max(last, p + 1);
                        }
                    }
                    if (rnd.nextBoolean()) {
                        append(s, ref, rnd, 1 + rnd.nextInt(6), last + 100);
                    }
                }
                assertAttentionMatches(store, attention, s, ref, rnd);
                if (fork != null) {
                    assertAttentionMatches(store, attention, fork, forkRef, rnd);
                    fork.close();
                }
                s.close();
                assertEquals(0, store.stats().liveBlocks(), "round " + round + " leaked blocks");
            }
        }
    }

    @Test
    void blockAlignedEvictionTakesBlocksOverWithoutNewOnes() {
        Random rnd = new Random(11);
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Ref ref = new Ref();
            append(s, ref, rnd, 10 * TPB + 2, 0);   // 11 blocks per table, the last partly filled
            try (Sequence fork = s.fork()) {
                Ref forkRef = ref.copy();
                long before = store.stats().liveBlocks();
                // Keep block 0 (sinks), drop blocks 1..4, keep blocks 5..10: every kept block is taken over as is,
                // although all of them are shared with the fork.
                int[] keep = new int[TPB + 6 * TPB - 2];
                for (int i = 0; i < TPB; i++) {
                    keep[i] = i;
                }
                for (int i = 0; i < 6 * TPB - 2; i++) {
                    keep[TPB + i] = 5 * TPB + i;
                }
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KV_HEADS; h++) {
                        s.keep(l, h, keep);
                        ref.keep(l, h, keep);
                    }
                }
                assertEquals(before, store.stats().liveBlocks(), "no block allocated, none freed (the fork holds them)");
                assertMatches(s, ref, "after a block-aligned eviction");
                assertMatches(fork, forkRef, "the fork");
            }
            // Now exclusive: StreamingLLM with 1 sink drops an aligned count of rows, so only the first block is
            // rewritten (in place) and the dropped whole blocks are freed.
            long before = store.stats().liveBlocks();
            int n = ref.length(0, 0);
            int[] keep = sinksAndRecent(n, 1, n - 1 - 2 * TPB);
            for (int l = 0; l < LAYERS; l++) {
                s.keep(l, new int[][] {keep, keep});
                for (int h = 0; h < KV_HEADS; h++) {
                    ref.keep(l, h, keep);
                }
            }
            assertEquals(before - 2L * 2 * LAYERS * KV_HEADS, store.stats().liveBlocks(), "two blocks per K and V table freed");
            assertMatches(s, ref, "after sinks + recent");
        }
    }

    @Test
    void streamingLlmReadsOnlyPositionsAndKeepsSinksPlusNewestRows() {
        var policy = Policies.streamingLlm(2);
        assertFalse(policy.readsRows(), "recency scores and a top-k need no keys or values");
        assertTrue(Policies.byName("knorm").readsRows());
        assertTrue(Policies.byName("snapkv").readsRows());
        Random rnd = new Random(3);
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence(); Compressor c = new Compressor();
             Attention attention = Attention.create(1)) {
            Ref ref = new Ref();
            for (int round = 0; round < 4; round++) {
                int before = ref.length(0, 0);
                append(s, ref, rnd, 9 + rnd.nextInt(12), 1000L * round);
                int n = ref.length(0, 0);
                int budget = 7 + rnd.nextInt(6);
                c.compress(s, policy, Budget.tokens(budget), l -> null);
                int[] keep = sinksAndRecent(n, 2, Math.min(n, budget) - 2);
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KV_HEADS; h++) {
                        ref.keep(l, h, keep);
                    }
                }
                assertMatches(s, ref, "round " + round + " (" + before + " -> " + n + " -> " + budget + " rows)");
                assertAttentionMatches(store, attention, s, ref, rnd);
            }
        }
    }

    /**
     * An exclusively owned table never needs a fresh block, whatever blocks get taken over: with the store full to
     * its limit, random keep sets (many with whole aligned blocks) all succeed and match the reference.
     */
    @Test
    void exclusiveTablesKeepWithoutFreshBlocksAtTheLimit() {
        Random rnd = new Random(5);
        int n = 12 * TPB + 3;
        long blocks = 2L * LAYERS * KV_HEADS * ((n + TPB - 1) / TPB);
        long block = LAYOUT.blockBytes();
        for (int round = 0; round < 30; round++) {
            try (KvStore store = KvStore.open(LAYOUT, new StoreConfig(blocks * block, block));
                 Sequence s = store.newSequence()) {
                Ref ref = new Ref();
                append(s, ref, rnd, n, 0);
                for (int step = 0; step < 4; step++) {
                    int l = rnd.nextInt(LAYERS);
                    int[][] keep = new int[KV_HEADS][];
                    for (int h = 0; h < KV_HEADS; h++) {
                        int len = ref.length(l, h);
                        // mostly-kept sets: long runs, so whole aligned blocks are common
                        List<Integer> k = new ArrayList<>();
                        for (int i = 0; i < len; i++) {
                            if (rnd.nextInt(8) != 0 || (i % TPB == 0 && rnd.nextBoolean())) {
                                k.add(i);
                            }
                        }
                        keep[h] = k.stream().mapToInt(Integer::intValue).toArray();
                    }
                    s.keep(l, keep);
                    for (int h = 0; h < KV_HEADS; h++) {
                        ref.keep(l, h, keep[h]);
                    }
                    assertMatches(s, ref, "round " + round + " step " + step);
                }
            }
        }
    }
}
