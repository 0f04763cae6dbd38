package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * A layer's attention output projection W_o as llama2.c stores it: {@code [modelDim][queryHeads * headDim]}
 * row-major, {@code out = W_o x}. Query head {@code h}'s slice W_o^h is columns {@code h*headDim ..
 * (h+1)*headDim - 1}. Needed by CriticalKV's value-norm stage. Not copied. A caller gives the weights as
 * {@link LayerInputs#outputProjection()}; {@link LayerContext} derives {@code modelDim} from their length.
 *
 * @param weights {@code float[modelDim * queryHeads * headDim]}, row-major; not copied
 * @param modelDim rows of W_o (the model dimension), {@code >= 1}
 */
record OutputProjection(float[] weights, int modelDim) {
    /**
     * Checks that the weights split into {@code modelDim} rows.
     *
     * @throws KvArgumentException if {@code weights} is null, {@code modelDim < 1} or does not divide its length
     */
    OutputProjection {
        if (weights == null) {
            throw new KvArgumentException("W_o weights are required (got null)");
        }
        if (modelDim < 1 || weights.length % modelDim != 0) {
            throw new KvArgumentException("W_o with " + weights.length + " floats cannot have " + modelDim + " rows");
        }
    }

    /**
     * Columns of W_o: queryHeads * headDim.
     *
     * @return {@code weights.length / modelDim}
     */
    int inputDim() {
        return weights.length / modelDim;
    }
}
