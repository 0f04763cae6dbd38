package io.kvslab.bench.footprint;

import io.kvslab.bench.model.KvDtypes;

/**
 * One line of the footprint table.
 *
 * @param model             geometry name
 * @param contextTokens     tokens filled
 * @param dtype             stored element types of K and V rows
 * @param rowPairBytes      bytes of one K row plus one V row of a (layer, KV head) in these types: exact, the
 *                          types' own packing (q8_0 at head dim 128: 136 + 136; q8_0/q4_0: 136 + 72)
 * @param policy            compression policy name
 * @param keptTokensPerHead mean rows kept per (layer, KV head)
 * @param theoreticalBytes  K+V bytes of the kept rows: kept rows (summed over (layer, KV head)) x rowPairBytes
 * @param liveBytes         bytes of the blocks holding them
 * @param heldReservedBytes slab bytes the store holds right after compression, before {@code compact()}
 * @param reservedBytes     slab bytes after {@code compact()}
 * @param measured          true: a real store was filled and measured; false: computed by {@link FootprintModel}
 *                          because the dense fill would exceed the memory limit
 * @param analyticKind      for rows not measured, what the policy's analytic row count is
 *                          ({@link FootprintPolicy#analyticKind()})
 * @param seconds           wall time of fill + compress + compact (0 for analytic rows)
 * @param rssBytes          the process's resident bytes right after compaction, store still open (-1: analytic
 *                          row or no /proc)
 * @param hwmBytes          the process's peak resident bytes so far (VmHWM: process-wide, includes earlier rows)
 */
public record FootprintRow(String model, int contextTokens, KvDtypes dtype, long rowPairBytes, String policy, double keptTokensPerHead,
                           long theoreticalBytes, long liveBytes, long heldReservedBytes, long reservedBytes,
                           boolean measured, String analyticKind, double seconds, long rssBytes, long hwmBytes) {
    /** Reserved over live bytes after compaction (1.0 = no slab slack). */
    public double overhead() {
        return liveBytes == 0 ? Double.NaN : (double) reservedBytes / liveBytes;
    }

    /** Reserved bytes over the theoretical bytes (block and slab slack together). */
    public double overTheoretical() {
        return theoreticalBytes == 0 ? Double.NaN : (double) reservedBytes / theoreticalBytes;
    }

    public String mode() {
        return measured ? "measured" : analyticKind;
    }
}
