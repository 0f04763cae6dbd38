/**
 * KVSlab: an off-heap paged KV cache for LLM inference, with native attention kernels, compression policies,
 * cross-layer key sharing (PoD), snapshots and metrics.
 *
 * <p>Exported: the store API ({@code io.kvslab}), compression policies, PoD, snapshots and metrics. The
 * {@code io.kvslab.internal.*} packages are implementation and not exported. Chronicle Bytes is needed only for
 * snapshots ({@code requires static}): an application that snapshots puts it on its path itself.
 */
module io.kvslab {
    requires jdk.jfr;
    requires static chronicle.bytes;

    exports io.kvslab;
    exports io.kvslab.policy;
    exports io.kvslab.pod;
    exports io.kvslab.snapshot;
    exports io.kvslab.metrics;
    exports io.kvslab.tier;
}
