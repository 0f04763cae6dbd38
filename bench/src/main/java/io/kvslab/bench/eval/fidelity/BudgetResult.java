package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.eval.Interval;

/**
 * One policy at one budget on one KV element type, aggregated over the texts.
 *
 * @param policy           policy name, or {@link FidelityEval#FULL} for the whole cache on a quantised store
 * @param dtype            element type of the compressed run's store ("f32", "f16", ...)
 * @param budget           "10%", "25%", "50%", "dynamic", or "100%" for {@link FidelityEval#FULL}
 * @param texts            texts evaluated
 * @param keptRows         fraction of the context's (layer, KV head) rows kept
 * @param kvBytes          mean live bytes of the store after compression (whole blocks, K and V)
 * @param kvBytesFraction  kvBytes over the f32 reference run's live bytes for the full context
 * @param meanKl           mean over texts and continuation steps of KL(full f32 || compressed), nats
 * @param maxKl            largest per-step KL seen
 * @param top1             fraction of continuation steps whose argmax agrees with the full run
 * @param pplFull          perplexity of the continuation under the full cache (geometric mean over texts)
 * @param pplCompressed    the same under the compressed cache
 * @param meanPerturbation mean over texts, continuation queries and (layer, query head) of ||(o - o') W_o^h||_1
 *                         (eviction on f32 rows only: NaN for other element types)
 * @param meanWindowPerturbation the same over the observation-window queries (diagnostic)
 * @param klInterval       95% bootstrap interval (over texts) of meanKl
 * @param top1Interval     the same of top1
 * @param deltaPplInterval the same of {@link #deltaPpl()}
 */
public record BudgetResult(String policy, String dtype, String budget, int texts, double keptRows, double kvBytes,
                           double kvBytesFraction, double meanKl, double maxKl, double top1, double pplFull,
                           double pplCompressed, double meanPerturbation, double meanWindowPerturbation,
                           Interval klInterval, Interval top1Interval, Interval deltaPplInterval) {
    /** Perplexity change caused by the compression. */
    public double deltaPpl() {
        return pplCompressed - pplFull;
    }

    /** The series a plot shows this row in: the policy, with the element type when it is not f32. */
    public String series() {
        return dtype.equals("f32") ? policy : policy + " " + dtype;
    }
}
