package io.kvslab.bench.footprint;

import io.kvslab.KvLayout;
import io.kvslab.StoreConfig;
import io.kvslab.bench.geometry.SlabMath;

/**
 * The footprint the store's allocation scheme implies, computed without allocating: every (layer, KV head) holds
 * {@code ceil(rows / tokensPerBlock)} K blocks and as many V blocks; blocks live in slabs of
 * {@code floor(slabBytes / blockBytes)} blocks; after {@code compact()} the ideal is the fewest slabs that hold the
 * live blocks ({@link SlabMath}).
 */
public final class FootprintModel {
    private FootprintModel() {}

    /**
     * @param keptRows        rows summed over all (layer, KV head) pairs
     * @param theoreticalBytes {@code keptRows x 2 x rowBytes} (the dtype's bytes per row): the bytes of the kept rows, no slack
     * @param liveBytes       bytes of the blocks holding them
     * @param reservedBytes   bytes of the fewest whole slabs holding those blocks
     */
    public record Estimate(long keptRows, long theoreticalBytes, long liveBytes, long reservedBytes) {}

    /** Estimate for the given rows per (layer, KV head). */
    public static Estimate estimate(KvLayout layout, StoreConfig config, int[][] rowsPerHead) {
        long rows = 0;
        long blocks = 0;
        int tpb = layout.tokensPerBlock();
        for (int[] layer : rowsPerHead) {
            for (int n : layer) {
                rows += n;
                blocks += 2L * ((n + tpb - 1) / tpb);
            }
        }
        // as many K blocks as V blocks; their sizes differ when K and V types do
        return new Estimate(rows, rows * (layout.keyRowBytes() + layout.valueRowBytes()),
                blocks / 2 * layout.blockPairBytes(), SlabMath.reservedFor(layout, config, blocks));
    }

    /** Rows per head a policy keeps at a context length. */
    public static int[][] keptRows(KvLayout layout, FootprintPolicy policy, int contextTokens) {
        int[][] rows = new int[layout.layers()][layout.kvHeads()];
        for (int l = 0; l < rows.length; l++) {
            for (int h = 0; h < rows[l].length; h++) {
                rows[l][h] = policy.keptRows(layout, l, h, contextTokens);
            }
        }
        return rows;
    }

    /** The dense cache of {@code contextTokens} tokens in every head (what filling needs before compression). */
    public static Estimate dense(KvLayout layout, StoreConfig config, int contextTokens) {
        return estimate(layout, config, keptRows(layout, FootprintPolicy.full(), contextTokens));
    }
}
