/*
 * Native kernels of the compression-policy layer (io.kvslab.kernel.PolicyKernels binds them).
 *
 * Both kernels are matrix products followed by a cheap per-row reduction, so the product goes to OpenBLAS
 * (cblas_sgemm) and the reduction is a plain loop. Everything is fp32; reductions accumulate in double so the
 * result does not depend on the summation order of a long row.
 *
 * Like every entry point of libkvslab, these trust their arguments: the Java binding validates shapes, ranges
 * and buffer sizes before each call.
 */
#include "policy_kernels.h"
#include "blas_threads.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Number of keys visible to a query at position qpos: keyPos is strictly ascending, so it is a prefix. */
static int32_t visible_prefix(const int64_t *keyPos, int32_t n, int64_t qpos) {
    int32_t lo = 0, hi = n; /* first index with keyPos > qpos */
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (keyPos[mid] <= qpos) lo = mid + 1; else hi = mid;
    }
    return lo;
}

int32_t kvs_policy_window_attention(const float *q, int32_t w, int32_t qHeads, int32_t headDim, int32_t h0,
                                    int32_t g, const float *keys, int32_t n, const int64_t *keyPos,
                                    const int64_t *queryPos, float scale, float *meanOut, float *lastOut,
                                    float *scratch) {
    const int32_t qStride = qHeads * headDim;
    const int single = kvs_blas_enter_if_small(w, n, headDim);
    for (int32_t gi = 0; gi < g; gi++) {
        const int32_t h = h0 + gi;
        /* scratch[i][j] = scale * q_i . k_j for every window query i and key j (w x n), one sgemm. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, w, n, headDim, scale,
                    q + (size_t) h * headDim, qStride, keys, headDim, 0.0f, scratch, n);
        float *mean = meanOut + (size_t) gi * n;
        memset(mean, 0, sizeof(float) * (size_t) n);
        for (int32_t i = 0; i < w; i++) {
            float *row = scratch + (size_t) i * n;
            const int32_t m = visible_prefix(keyPos, n, queryPos[i]);
            /* softmax over the visible prefix, max-subtracted; masked keys get probability 0 */
            if (m > 0) {
                float mx = row[0];
                for (int32_t j = 1; j < m; j++) if (row[j] > mx) mx = row[j];
                double sum = 0.0;
                for (int32_t j = 0; j < m; j++) {
                    float e = expf(row[j] - mx);
                    row[j] = e;
                    sum += e;
                }
                const float inv = (float) (1.0 / sum);
                for (int32_t j = 0; j < m; j++) row[j] *= inv;
            }
            for (int32_t j = m; j < n; j++) row[j] = 0.0f;
        }
        /* mean over the window queries; column sums accumulate in double */
        for (int32_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int32_t i = 0; i < w; i++) s += scratch[(size_t) i * n + j];
            mean[j] = (float) (s / w);
        }
        if (lastOut != NULL) {
            memcpy(lastOut + (size_t) gi * n, scratch + (size_t) (w - 1) * n, sizeof(float) * (size_t) n);
        }
    }
    kvs_blas_leave_if(single);
    return 0;
}

int32_t kvs_policy_value_norms(const float *values, int32_t n, int32_t headDim, const float *wo, int32_t modelDim,
                               int32_t qHeads, int32_t h0, int32_t g, float *out, float *scratch, int32_t tile) {
    const int32_t woStride = qHeads * headDim; /* W_o is [modelDim][qHeads*headDim], row-major (out = W_o x) */
    const int single = kvs_blas_enter_if_small(tile < n ? tile : n, modelDim, headDim);
    for (int32_t gi = 0; gi < g; gi++) {
        const int32_t h = h0 + gi;
        float *dst = out + (size_t) gi * n;
        for (int32_t t0 = 0; t0 < n; t0 += tile) {
            const int32_t rows = (n - t0 < tile) ? (n - t0) : tile;
            /* scratch[t][k] = sum_j V[t0+t][j] * W_o[k][h*d + j]: rows x modelDim, i.e. V_tile . (W_o^h)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, modelDim, headDim, 1.0f,
                        values + (size_t) t0 * headDim, headDim, wo + (size_t) h * headDim, woStride,
                        0.0f, scratch, modelDim);
            /* L1 norm of each row, adding its terms in order k = 0, 1, ... in double. Four rows at a time: four
             * independent chains of dependent adds instead of one (one chain is bound by the add latency, which
             * made this loop a third of the kernel's time); each row's sum is the same additions in the same
             * order as a row-by-row loop, so the results are bit-identical to it. */
            int32_t t = 0;
            for (; t + 4 <= rows; t += 4) {
                const float *u0 = scratch + (size_t) t * modelDim;
                const float *u1 = u0 + modelDim, *u2 = u1 + modelDim, *u3 = u2 + modelDim;
                double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
                for (int32_t k = 0; k < modelDim; k++) {
                    s0 += fabsf(u0[k]);
                    s1 += fabsf(u1[k]);
                    s2 += fabsf(u2[k]);
                    s3 += fabsf(u3[k]);
                }
                dst[t0 + t] = (float) s0;
                dst[t0 + t + 1] = (float) s1;
                dst[t0 + t + 2] = (float) s2;
                dst[t0 + t + 3] = (float) s3;
            }
            for (; t < rows; t++) {
                const float *u = scratch + (size_t) t * modelDim;
                double s = 0.0;
                for (int32_t k = 0; k < modelDim; k++) s += fabsf(u[k]);
                dst[t0 + t] = (float) s;
            }
        }
    }
    kvs_blas_leave_if(single);
    return 0;
}

int32_t kvs_policy_gram(const float *wo, int32_t modelDim, int32_t qHeads, int32_t headDim, float *gram) {
    const int32_t woStride = qHeads * headDim;
    const int single = kvs_blas_enter_if_small(headDim, headDim, modelDim);
    for (int32_t h = 0; h < qHeads; h++) {
        /* gram[h] = (W_o^h)^T W_o^h: W_o^h is the modelDim x headDim column block h of W_o */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, headDim, headDim, modelDim, 1.0f,
                    wo + (size_t) h * headDim, woStride, wo + (size_t) h * headDim, woStride,
                    0.0f, gram + (size_t) h * headDim * headDim, headDim);
    }
    kvs_blas_leave_if(single);
    return 0;
}

int32_t kvs_policy_value_l2_norms(const float *values, int32_t n, int32_t headDim, const float *gram, int32_t g,
                                  float *out, float *scratch, int32_t tile) {
    const int32_t d = headDim, width = g * headDim;
    const int single = kvs_blas_enter_if_small(tile < n ? tile : n, width, headDim);
    for (int32_t t0 = 0; t0 < n; t0 += tile) {
        const int32_t rows = (n - t0 < tile) ? (n - t0) : tile;
        /* scratch[t][gi*d + j] = sum_i V[t0+t][i] * G_gi[i][j]; G is symmetric, so the g matrices stored one after
         * the other ([g*d][d] row-major) are B^T of the [d][g*d] right-hand side. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, width, d, 1.0f,
                    values + (size_t) t0 * d, d, gram, d, 0.0f, scratch, width);
        for (int32_t t = 0; t < rows; t++) {
            const float *v = values + (size_t) (t0 + t) * d;
            for (int32_t gi = 0; gi < g; gi++) {
                const float *y = scratch + (size_t) t * width + (size_t) gi * d;
                double q = 0.0;
                for (int32_t j = 0; j < d; j++) q += (double) y[j] * v[j];
                out[(size_t) gi * n + t0 + t] = (float) sqrt(q > 0.0 ? q : 0.0);
            }
        }
    }
    kvs_blas_leave_if(single);
    return 0;
}
