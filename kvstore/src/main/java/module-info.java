/**
 * KVSlab: an off-heap paged KV cache for LLM inference, with native attention kernels, compression policies,
 * cross-layer key sharing (PoD), snapshots and metrics.
 *
 * <p>Exported: the store API ({@code io.kvslab}), compression policies, PoD, snapshots, metrics and tiers (swap and
 * shared prefix blocks on disk or Redis). The
 * {@code io.kvslab.internal.*} packages are implementation and not exported. Chronicle Bytes is needed only for
 * snapshots and Lettuce only for the Redis tier ({@code requires static}): an application that uses either puts it on
 * its path itself.
 */
module io.kvslab {
    requires jdk.jfr;
    requires static chronicle.bytes;
    requires static lettuce.core;

    exports io.kvslab;
    exports io.kvslab.policy;
    exports io.kvslab.pod;
    exports io.kvslab.snapshot;
    exports io.kvslab.metrics;
    exports io.kvslab.tier;
    // The JFR event classes are internal: embedders select them by event name (io.kvslab.Compression, ...).
    // Flight Recorder itself reads their fields reflectively.
    exports io.kvslab.internal.jfr to jdk.jfr;
}
