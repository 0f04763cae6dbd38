package io.kvslab.bench.eval.pod;

/**
 * One row of the PoD evaluation, averaged over the texts.
 *
 * @param method            "pod-v2", "pod-v1", "pod-v2+snapkv", "snapkv", "streamingllm"
 * @param setting           what the row was run at, e.g. "delta 0.5, n_r 32" or "= mem(pod-v2 delta 0.5, n_r 32)"
 * @param texts             texts evaluated
 * @param sharedLayerHeads  (layer, KV head) pairs using a lower layer's keys (0 for eviction-only rows)
 * @param kvBytesFraction   live KV bytes right after the context (sharing or compression applied) over the full
 *                          cache's
 * @param endBytesFraction  live KV bytes after the whole continuation over the full cache's at the same point
 * @param meanKl            mean KL(full || this run) per continuation step, nats
 * @param maxKl             largest per-step KL
 * @param top1              fraction of continuation steps with the full run's argmax token
 * @param pplFull           continuation perplexity of the full run (geometric mean over texts)
 * @param ppl               the same for this run
 */
public record PodResult(String method, String setting, int texts, int sharedLayerHeads, double kvBytesFraction,
                        double endBytesFraction, double meanKl, double maxKl, double top1, double pplFull,
                        double ppl) {
    /** Perplexity change against the full cache. */
    public double deltaPpl() {
        return ppl - pplFull;
    }

    /** KV bytes saved right after the context. */
    public double bytesSaved() {
        return 1 - kvBytesFraction;
    }
}
