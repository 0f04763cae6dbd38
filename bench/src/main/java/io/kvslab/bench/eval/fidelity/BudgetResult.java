package io.kvslab.bench.eval.fidelity;

/**
 * One policy at one budget, aggregated over the texts.
 *
 * @param policy           policy name
 * @param budget           "10%", "25%", "50%" or "dynamic"
 * @param texts            texts evaluated
 * @param keptRows         fraction of the context's (layer, KV head) rows kept
 * @param kvBytes          mean live bytes of the store after compression (whole blocks, K and V)
 * @param kvBytesFraction  kvBytes over the full context's live bytes
 * @param meanKl           mean over texts and continuation steps of KL(full || compressed), nats
 * @param maxKl            largest per-step KL seen
 * @param top1             fraction of continuation steps whose argmax agrees with the full run
 * @param pplFull          perplexity of the continuation under the full cache (geometric mean over texts)
 * @param pplCompressed    the same under the compressed cache
 * @param meanPerturbation mean over texts, continuation queries and (layer, query head) of ||(o - o') W_o^h||_1
 * @param meanWindowPerturbation the same over the observation-window queries (diagnostic)
 */
public record BudgetResult(String policy, String budget, int texts, double keptRows, double kvBytes,
                           double kvBytesFraction, double meanKl, double maxKl, double top1, double pplFull,
                           double pplCompressed, double meanPerturbation,
                           double meanWindowPerturbation) {
    /** Perplexity change caused by the compression. */
    public double deltaPpl() {
        return pplCompressed - pplFull;
    }
}
