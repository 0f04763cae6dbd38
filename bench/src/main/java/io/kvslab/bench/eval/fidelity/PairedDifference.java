package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.eval.Interval;

/**
 * A policy minus its base at the same budget and element type, paired over the same texts (CriticalKV - SnapKV,
 * CriticalAdaKV - Ada-KV, CriticalDBudgetKV - DBudgetKV), with 95% bootstrap intervals. A negative KL or delta
 * perplexity difference, or a positive top-1 difference, favours the policy; an interval that includes zero means the
 * texts do not show a difference either way.
 */
public record PairedDifference(String policy, String base, String dtype, String budget, int texts, double meanKl,
                               Interval klInterval, double top1, Interval top1Interval, double deltaPpl,
                               Interval deltaPplInterval) {
}
