package io.kvslab.policy;

/** Each KV head keeps its nominal budget (clamped to at least its protected rows and at most its rows). */
record UniformHeads() implements HeadAllocation {
    @Override
    public int[] allocate(LayerContext layer, int[] nominal, float[][] scores, boolean[][] protectedRows) {
        int[] out = new int[nominal.length];
        for (int h = 0; h < out.length; h++) {
            int p = RowOrder.count(protectedRows[h]);
            out[h] = Math.min(protectedRows[h].length, Math.max(p, nominal[h]));
        }
        return out;
    }
}
