package io.kvslab.policy;

/**
 * Knorm baseline (kvpress {@code KnormPress}): score = -||k||_2, so keys with a small norm are kept. It reads only
 * the keys, so it needs neither window queries nor W_o.
 */
record KeyNormScorer() implements Scorer {
    @Override
    public float[][] score(LayerContext layer) {
        int d = layer.headDim();
        float[][] scores = new float[layer.kvHeads()][];
        for (int h = 0; h < layer.kvHeads(); h++) {
            float[] k = layer.head(h).keys();
            int n = layer.head(h).length();
            float[] s = new float[n];
            for (int r = 0; r < n; r++) {
                double sq = 0;
                for (int j = 0; j < d; j++) {
                    double x = k[r * d + j];
                    sq += x * x;
                }
                s[r] = (float) -Math.sqrt(sq);
            }
            scores[h] = s;
        }
        return scores;
    }
}
