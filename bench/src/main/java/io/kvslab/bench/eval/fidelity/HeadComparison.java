package io.kvslab.bench.eval.fidelity;

/**
 * CriticalKV against its base selection at the same budget, head by head: per (layer, query head), the output
 * perturbation averaged over every text's continuation queries; and per (text, layer, query head) instance.
 *
 * @param policy            the CriticalKV variant (criticalkv or criticaladakv)
 * @param base              its base selection (snapkv or adakv)
 * @param budget            the budget label
 * @param queries           whose attention outputs are compared: "continuation" (the measure) or "window"
 *                          (the observation-window queries the selections were scored with; a diagnostic)
 * @param heads             (layer, query head) pairs compared
 * @param lower             pairs where the CriticalKV perturbation is strictly lower
 * @param equal             pairs where both are equal (e.g. no row evicted, or the same rows chosen)
 * @param instances         (text, layer, query head) instances compared
 * @param instancesLower    instances strictly lower
 * @param instancesEqual    instances equal
 */
public record HeadComparison(String policy, String base, String budget, String queries, int heads, int lower, int equal,
                             int instances, int instancesLower, int instancesEqual) {
    /** Fraction of (layer, query head) pairs where CriticalKV perturbs less (the paper: over 92% on Llama-3.1-8B). */
    public double fractionLower() {
        return heads == 0 ? Double.NaN : (double) lower / heads;
    }

    /** Fraction of (text, layer, query head) instances where CriticalKV perturbs less. */
    public double instanceFractionLower() {
        return instances == 0 ? Double.NaN : (double) instancesLower / instances;
    }

    /** The same among the instances where the two selections differ at all. */
    public double instanceFractionLowerWhereDifferent() {
        int differ = instances - instancesEqual;
        return differ == 0 ? Double.NaN : (double) instancesLower / differ;
    }
}
