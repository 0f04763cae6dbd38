package io.kvslab.bench.model;

/**
 * Every weight matrix of a model repacked for {@link PanelMatMul} (same values, another order), built once per
 * model on first use by a SIMD forward pass and shared by all of them ({@link LlamaModel#panels()}). Costs as much
 * memory again as the matrices.
 */
record WeightPanels(float[][] wq, float[][] wk, float[][] wv, float[][] wo, float[][] w1, float[][] w2,
                    float[][] w3, float[] classifier) {

    static WeightPanels of(ModelConfig c, ModelWeights w) {
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        int layers = c.layers();
        float[][] wq = new float[layers][];
        float[][] wk = new float[layers][];
        float[][] wv = new float[layers][];
        float[][] wo = new float[layers][];
        float[][] w1 = new float[layers][];
        float[][] w2 = new float[layers][];
        float[][] w3 = new float[layers][];
        for (int l = 0; l < layers; l++) {
            wq[l] = PanelMatMul.pack(w.wq[l], dim, dim);
            wk[l] = PanelMatMul.pack(w.wk[l], kvDim, dim);
            wv[l] = PanelMatMul.pack(w.wv[l], kvDim, dim);
            wo[l] = PanelMatMul.pack(w.wo[l], dim, dim);
            w1[l] = PanelMatMul.pack(w.w1[l], hidden, dim);
            w2[l] = PanelMatMul.pack(w.w2[l], dim, hidden);
            w3[l] = PanelMatMul.pack(w.w3[l], hidden, dim);
        }
        return new WeightPanels(wq, wk, wv, wo, w1, w2, w3, PanelMatMul.pack(w.classifier, c.vocabSize(), dim));
    }
}
