package io.kvslab.policy;

/**
 * Which norm of a row's projected value {@code v W_o^h} CriticalKV's second stage multiplies the window score by
 * (paper Eq. 8 uses L1; Appendix C.3 reports that L1 and L2 give nearly the same results, as does kvpress issue 45).
 *
 * <p>Both are averaged over the query heads of the KV head's GQA group (the mean of per-head norms).
 */
public enum ValueNorm {
    /**
     * {@code ||v W_o^h||_1}, the paper's and kvpress's choice and the default: exact, computed as the explicit
     * product (one sgemm of the rows with each query head's W_o slice, {@code headDim x modelDim} multiply-adds per
     * row and query head: the FLOPs of the layer's whole output projection).
     */
    L1,
    /**
     * {@code ||v W_o^h||_2 = sqrt(v^T G_h v)} with {@code G_h = (W_o^h)^T W_o^h}, the {@code headDim x headDim} Gram
     * matrix of query head h's W_o slice: {@code headDim^2} multiply-adds per row and query head ({@code
     * modelDim / headDim} times fewer than L1, 32x at Llama-3-8B's geometry). The Gram matrices are computed once per
     * W_o weights array per {@link Compressor} (in double, kept as fp32) and reused by later calls, so the
     * weights must not change while a compressor that has seen them is in use.
     */
    L2
}
