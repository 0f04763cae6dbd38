package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreStats;
import io.kvslab.bench.geometry.SlabMath;
import io.kvslab.policy.CompressionPolicy;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * What a compression of the long-context stress must leave behind (the invariants of {@link LongContextStress}):
 * the rows each head keeps, the store's accounting, and a sampled head's stored rows. Each failure is added to the
 * run's {@link Violations}.
 */
final class CompressionChecks {
    private final LongContextConfig config;

    CompressionChecks(LongContextConfig config) {
        this.config = config;
    }

    /** Every head holds exactly the sinks and the newest {@code budget - sinks} rows. */
    void sinksAndRecent(Sequence s, long streamed, Violations violations) {
        LongContextConfig c = config;
        KvLayout layout = c.layout();
        long[] expected = new long[c.budget()];
        for (int i = 0; i < c.sinks(); i++) {
            expected[i] = i;
        }
        int recent = c.budget() - c.sinks();
        for (int i = 0; i < recent; i++) {
            expected[c.sinks() + i] = streamed - recent + i;
        }
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                long[] p = s.positions(l, h);
                if (!Arrays.equals(p, expected)) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows with positions " + describe(p) + ", expected "
                            + describe(expected));
                    return;
                }
            }
        }
    }

    /**
     * Every head keeps a strictly increasing subsequence of its rows including every protected window row; with
     * uniform budgets exactly {@code budget} rows per head (or its protected rows if more), with Ada-KV at most the
     * layer's total budget, with PyramidKV at most {@link LongContextConfig#keptRowsCap()} rows per head.
     */
    void subsetWithinBudget(Sequence s, long[][] before, long streamed, int windowSize,
                            CompressionPolicy policy, Violations violations) {
        KvLayout layout = config.layout();
        boolean protectsWindow = policy.protection().observationWindow();
        long windowStart = streamed - Math.min(windowSize, streamed);
        long[] headRows = new long[layout.kvHeads()];
        long[] headRowsBefore = new long[layout.kvHeads()];
        long[] headBudget = new long[layout.kvHeads()];
        for (int l = 0; l < layout.layers(); l++) {
            long layerRows = 0;
            long layerRowsBefore = 0;
            long layerBudget = 0;
            for (int h = 0; h < layout.kvHeads(); h++) {
                long[] was = before[l * layout.kvHeads() + h];
                long[] p = s.positions(l, h);
                layerRows += p.length;
                int j = 0;
                for (int i = 0; i < p.length; i++) {
                    while (j < was.length && was[j] < p[i]) {
                        if (protectsWindow && was[j] >= windowStart) {
                            violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                                    + " dropped position " + was[j] + " of the observation window");
                            return;
                        }
                        j++;
                    }
                    if (j == was.length || was[j] != p[i] || (i > 0 && p[i] <= p[i - 1])) {
                        violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                                + " holds position " + p[i] + ", which it did not hold before or out of order");
                        return;
                    }
                    j++;
                }
                int prot = 0;
                for (long x : was) {
                    prot += (protectsWindow && x >= windowStart) || x < policy.protection().sinks() ? 1 : 0;
                }
                int nominal = Math.min(was.length, Math.max(config.budget(), prot));
                // pooled budgets (Ada-KV over a layer's heads, PyramidKV over a head's layers): max(budget, prot)
                // per table, the total capped by the rows there are
                layerBudget += Math.max(config.budget(), prot);
                layerRowsBefore += was.length;
                headRows[h] += p.length;
                headRowsBefore[h] += was.length;
                headBudget[h] += Math.max(config.budget(), prot);
                if (config.uniformBudgets() && p.length != nominal) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows; the uniform budget gives " + nominal);
                    return;
                }
                if (!config.uniformLayers() && p.length > Math.max(config.keptRowsCap(), prot)) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows, more than " + config.keptRowsCap());
                    return;
                }
            }
            if (config.uniformLayers()) {
                long total = Math.min(layerRowsBefore, layerBudget);
                violations.check(layerRows == total, "after compression at token " + streamed + " layer " + l
                        + " holds " + layerRows + " rows, not its total budget " + total);
            }
        }
        if (!config.uniformLayers()) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                long total = Math.min(headRowsBefore[h], headBudget[h]);
                violations.check(headRows[h] == total, "after compression at token " + streamed + " KV head " + h
                        + " holds " + headRows[h] + " rows over all layers, not its total budget " + total);
            }
        }
    }

    /** Live bytes equal the blocks the heads' lengths need, exactly. */
    void accounting(Sequence s, KvStore store, long streamed, Violations violations) {
        KvLayout layout = config.layout();
        long blocks = 0;
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                blocks += 2L * ((s.length(l, h) + layout.tokensPerBlock() - 1) / layout.tokensPerBlock());
            }
        }
        long expectLive = SlabMath.bytesOfBlocks(layout, blocks);
        StoreStats st = store.stats();
        violations.check(st.liveBytes() == expectLive, "after compression at token " + streamed + " live bytes are "
                + st.liveBytes() + ", the retained rows need exactly " + expectLive);
        violations.check(st.liveBytes() == SlabMath.bytesOfBlocks(layout, st.liveBlocks()), "live bytes " + st.liveBytes()
                + " != live blocks x block bytes");
        violations.check(st.reservedBytes() >= st.liveBytes(), "reserved " + st.reservedBytes() + " < live "
                + st.liveBytes());
    }

    static long[][] positions(Sequence s) {
        KvLayout layout = s.layout();
        long[][] p = new long[layout.layers() * layout.kvHeads()][];
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                p[l * layout.kvHeads() + h] = s.positions(l, h);
            }
        }
        return p;
    }

    /** Compares one random head's stored K and V rows with the regenerated synthetic rows, bit for bit. */
    void content(Sequence s, StructuredKv gen, SplittableRandom rnd, Violations violations) {
        KvLayout layout = config.layout();
        int l = rnd.nextInt(layout.layers());
        int h = rnd.nextInt(layout.kvHeads());
        long[] pos = s.positions(l, h);
        String bad = StoredRows.mismatch(s, l, h, gen, pos, new long[pos.length], pos.length);
        if (bad != null) {
            violations.add(bad);
        }
    }

    private static String describe(long[] p) {
        if (p.length <= 8) {
            return Arrays.toString(p);
        }
        return "[" + p[0] + ", " + p[1] + ", ..., " + p[p.length - 2] + ", " + p[p.length - 1] + "] (" + p.length
                + " rows)";
    }
}
