package io.kvslab.policy;

/**
 * A layer's attention output projection W_o as llama2.c stores it: {@code [modelDim][queryHeads * headDim]}
 * row-major, {@code out = W_o x}. Query head {@code h}'s slice W_o^h is columns {@code h*headDim ..
 * (h+1)*headDim - 1}. Needed by CriticalKV's value-norm stage. Not copied.
 */
public record OutputProjection(float[] weights, int modelDim) {
    public OutputProjection {
        if (weights == null) {
            throw new PolicyException("W_o weights are required (got null)");
        }
        if (modelDim < 1 || weights.length % modelDim != 0) {
            throw new PolicyException("W_o with " + weights.length + " floats cannot have " + modelDim + " rows");
        }
    }

    /** Columns of W_o: queryHeads * headDim. */
    public int inputDim() {
        return weights.length / modelDim;
    }
}
