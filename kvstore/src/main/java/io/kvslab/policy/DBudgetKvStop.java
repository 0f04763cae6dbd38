package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * DBudgetKV's own per-layer row count, whatever the policy's scorer and protection: the {@link NormLossStop} run
 * along DBudgetKV's ranking (the first {@code sinks} rows protected, the others newest to oldest), so a layer keeps
 * {@code sinks + K} rows per KV head exactly as {@link Policies#dbudgetKv()} would. The policy's own selector then
 * decides <em>which</em> rows fill that count (CriticalKV's two stages in {@link Policies#criticalDbudgetKv()}); its
 * protection still applies, so a count below the protected rows (the observation window) is raised to them.
 *
 * <p>Why a rule of its own: running {@link NormLossStop} along the policy's attention ranking instead stops much
 * earlier (attention is concentrated, so 99% of the norm sits in few rows), which changes DBudgetKV's budget rather
 * than reusing it; this rule keeps the budget signal and swaps only the ranking.
 *
 * @param stop  the norm-loss stop (T, last query rows, norm conventions)
 * @param sinks DBudgetKV's protected first rows (4 in the paper)
 */
record DBudgetKvStop(NormLossStop stop, int sinks) implements LayerBudgetRule {
    DBudgetKvStop {
        if (stop == null || sinks < 0) {
            throw new KvArgumentException("DBudgetKV's stop needs a norm-loss rule and sinks >= 0, got " + stop + " and "
                    + sinks);
        }
    }

    @Override
    public boolean dynamic() {
        return true;
    }

    @Override
    public int windowQueries() {
        return stop.windowQueries();
    }

    @Override
    public int[] rowsPerHead(LayerContext layer, RowCounts counts, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyWorkspace workspace) {
        float[][] recency = new RecencyScorer().score(layer);
        boolean[][] sinkMasks = Protection.sinks(sinks).masks(layer, 0);
        return stop.rowsPerHead(layer, counts, budget, recency, sinkMasks, workspace);
    }
}
