package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * Scores each row by its recency (its row index, newer = higher), so a top-k keeps the newest rows: StreamingLLM's
 * "recent window" and DBudgetKV's newest-to-oldest ranking. The sinks come from {@link Protection}. Row indices are
 * exact in fp32 up to 2^24 rows per head, far beyond any context a head holds.
 */
record RecencyScorer() implements Scorer {
    static final int MAX_EXACT_ROWS = 1 << 24;

    @Override
    public boolean readsRows() {
        return false;   // row indices only
    }

    @Override
    public float[][] score(LayerContext layer) {
        float[][] scores = new float[layer.kvHeads()][];
        for (int h = 0; h < layer.kvHeads(); h++) {
            int n = layer.head(h).length();
            if (n > MAX_EXACT_ROWS) {
                throw new KvArgumentException("recency scores are exact for at most " + MAX_EXACT_ROWS
                        + " rows per head; layer " + layer.layer() + " head " + h + " has " + n);
            }
            float[] s = new float[n];
            for (int r = 0; r < n; r++) {
                s[r] = r;
            }
            scores[h] = s;
        }
        return scores;
    }
}
