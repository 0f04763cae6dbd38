/* Kernels of the compression-policy layer. The Java side (io.kvslab.kernel.PolicyKernels) validates every argument. */
#ifndef KVSLAB_POLICY_KERNELS_H
#define KVSLAB_POLICY_KERNELS_H
#include <stdint.h>

/*
 * Observation-window attention of the query heads h0 .. h0+g-1 (one GQA group) over one KV head's keys.
 *   q        [w][qHeads][headDim]  window queries (RoPE applied), query i at absolute position queryPos[i]
 *   keys     [n][headDim]          the KV head's keys, key j at absolute position keyPos[j] (strictly ascending)
 * Query i attends causally: to the keys with keyPos[j] <= queryPos[i] (softmax in fp32, max subtracted, scaled by
 * `scale`); the other keys get probability 0, and a query that sees no key has an all-zero row.
 *   meanOut  [g][n]  mean over the w queries of the probability each key receives
 *   lastOut  [g][n]  the probabilities of the last query (i = w-1); may be NULL
 *   scratch  [w][n]
 * Returns 0.
 */
int32_t kvs_policy_window_attention(const float *q, int32_t w, int32_t qHeads, int32_t headDim, int32_t h0,
                                    int32_t g, const float *keys, int32_t n, const int64_t *keyPos,
                                    const int64_t *queryPos, float scale, float *meanOut, float *lastOut,
                                    float *scratch);

/*
 * Query head h's slice of the output projection W_o (out = W_o x, W_o of modelDim rows), element j of its row k:
 *   W_o^h[k][j] = wo[h * woHeadStride + k * woRowStride + j]      k in 0..modelDim-1, j in 0..headDim-1
 * llama2.c's row-major wo [modelDim][qHeads*headDim] is woRowStride = qHeads*headDim, woHeadStride = headDim; the
 * head-major copy the Java side uploads ([qHeads][modelDim][headDim]) is woRowStride = headDim, woHeadStride =
 * modelDim*headDim. Both give the same bits (OpenBLAS packs the slice into the same buffer); the head-major one is
 * faster because packing reads it contiguously instead of one 512-byte row every qHeads*headDim floats.
 */

/*
 * L1 norms of the values projected through each query head's slice of the output projection:
 *   out[gi][t] = sum_k | sum_j values[t][j] * W_o^(h0+gi)[k][j] |      for gi in 0..g-1, t in 0..n-1
 *   values   [n][headDim]
 *   wo       W_o, strides as above
 *   scratch  [tile][modelDim]            rows are processed `tile` at a time
 * Returns 0.
 */
int32_t kvs_policy_value_norms(const float *values, int32_t n, int32_t headDim, const float *wo, int32_t modelDim,
                               int64_t woRowStride, int64_t woHeadStride, int32_t h0, int32_t g, float *out,
                               float *scratch, int32_t tile);

/*
 * The same L1 norms as kvs_policy_value_norms, each output element computed the way OpenBLAS's 4-row remainder
 * kernel computes it on the bundled build (two fused multiply-add chains from zero, over the even and the odd j,
 * then added in fp32), so that rows which would sit in such slots get the same bits without a product of their own:
 *   out[gi][t] = sum_k | fl(E + O) |,  E = fma-chain over j = 0, 2, 4, ..., O = over j = 1, 3, 5, ...
 * of values[t][j] * W_o^(h0+gi)[k][j]; the sum runs over k in order, in double. headDim must be even.
 *   scratch  [headDim][8] floats
 * Returns 0. Since ABI 7.
 */
int32_t kvs_policy_value_norms_paired(const float *values, int32_t n, int32_t headDim, const float *wo,
                                      int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t h0,
                                      int32_t g, float *out, float *scratch);

/*
 * Decodes the arithmetic of the norm product (kvs_policy_value_norms's sgemm over `tile`-row tiles) on this BLAS
 * build and CPU: for each slot kind of RowPacking (0 = first half of a 12-row block, 1 = second half and the last
 * 1-3 rows, 2 = the 4-row remainder, 3 = the 8-row remainder) and each output k, whether OpenBLAS computes element
 * [t][k] as one fused multiply-add chain from zero over j = 0..headDim-1 (masks[kind][k] = 0) or as two, over the
 * even and the odd j, added in fp32 (1). Found by comparing single-threaded sgemm products of pseudo-random data
 * (heights tile, 20 and 16) with both computations, element by element, until every element has told them apart
 * (at most 16 rounds).
 *   masks  [4][modelDim]
 * Returns 0 when every element matched exactly one of the two consistently for its kind and output (masks filled);
 * nonzero when the build computes some element another way or the samples did not decide (masks unspecified).
 * headDim must be even and tile >= 20. Since ABI 8.
 */
int32_t kvs_policy_l1_chain_masks(int32_t modelDim, int32_t headDim, int32_t tile, uint8_t *masks);

/*
 * The L1 norms of kvs_policy_value_norms with each element computed in registers as the masks say (one chain or two,
 * see kvs_policy_l1_chain_masks) and reduced at once: no product is written to memory. Rows are in kind segments:
 * rows [kindEnds[q-1], kindEnds[q]) are of kind q (kindEnds[-1] = 0), every kindEnds[q] a multiple of 16 and
 * kindEnds[3] = n (pad a segment with any rows; their outputs are computed and may be ignored).
 *   out[gi][t] = sum_k | P(t, k) |   in double, over k in order, P as masks[kind(t)][k] says
 *   values   [n][headDim], n a multiple of 16; headDim even
 *   masks    [4][modelDim]
 *   scratch  2 * headDim * 16 + 8 floats
 * Returns 0. Since ABI 8.
 */
int32_t kvs_policy_value_norms_fused(const float *values, int32_t n, int32_t headDim, const float *wo,
                                     int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t h0,
                                     int32_t g, const int32_t *kindEnds, const uint8_t *masks, float *out,
                                     float *scratch);

/*
 * Gram matrices of every query head's slice of W_o: gram[h][i][j] = sum_k W_o^h[k][i] * W_o^h[k][j]
 *   wo    W_o, strides as above
 *   gram  [qHeads][headDim][headDim]
 * Returns 0.
 */
int32_t kvs_policy_gram(const float *wo, int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t qHeads,
                        int32_t headDim, float *gram);

/*
 * L2 norms of the values projected through g query heads' slices of W_o, from their Gram matrices:
 *   out[gi][t] = sqrt(max(0, values[t]^T gram[gi] values[t]))      for gi in 0..g-1, t in 0..n-1
 *   values   [n][headDim]
 *   gram     [g][headDim][headDim]  symmetric (the group's matrices from kvs_policy_gram)
 *   scratch  [tile][g*headDim]      rows are processed `tile` at a time
 * Returns 0.
 */
int32_t kvs_policy_value_l2_norms(const float *values, int32_t n, int32_t headDim, const float *gram, int32_t g,
                                  float *out, float *scratch, int32_t tile);

#endif
