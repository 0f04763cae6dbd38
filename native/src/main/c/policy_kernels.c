/*
 * Native kernels of the compression-policy layer (io.kvslab.kernel.PolicyKernels binds them).
 *
 * Both kernels are matrix products followed by a cheap per-row reduction, so the product goes to OpenBLAS
 * (cblas_sgemm) and the reduction is a plain loop. Everything is fp32; reductions accumulate in double so the
 * result does not depend on the summation order of a long row.
 *
 * Each kernel is a list of independent products (a tile, a head) handed to kvs_blas_run_items (blas_threads.h):
 * large ones are shared by the library's workers with OpenBLAS single-threaded inside each, small ones run on the
 * caller. An item is the same product whichever thread runs it, so the results do not depend on the threads.
 *
 * Like every entry point of libkvslab, these trust their arguments: the Java binding validates shapes, ranges
 * and buffer sizes before each call.
 */
#include "policy_kernels.h"
#include "blas_threads.h"

#include <cblas.h>
#include <immintrin.h>
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

/* One window-attention item: query head h0 + gi. */
typedef struct {
    const float *q;
    int32_t w, qStride, headDim, h0, n;
    const float *keys;
    const int64_t *keyPos, *queryPos;
    float scale;
    float *meanOut, *lastOut;
} window_job;

static void window_item(void *ctx, int32_t gi, float *scratch) {
    const window_job *j = (const window_job *) ctx;
    const int32_t w = j->w, n = j->n, headDim = j->headDim, h = j->h0 + gi;
    /* scratch[i][j] = scale * q_i . k_j for every window query i and key j (w x n), one sgemm. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, w, n, headDim, j->scale,
                j->q + (size_t) h * headDim, j->qStride, j->keys, headDim, 0.0f, scratch, n);
    float *mean = j->meanOut + (size_t) gi * n;
    memset(mean, 0, sizeof(float) * (size_t) n);
    for (int32_t i = 0; i < w; i++) {
        float *row = scratch + (size_t) i * n;
        const int32_t m = visible_prefix(j->keyPos, n, j->queryPos[i]);
        /* softmax over the visible prefix, max-subtracted; masked keys get probability 0 */
        if (m > 0) {
            float mx = row[0];
            for (int32_t k = 1; k < m; k++) if (row[k] > mx) mx = row[k];
            double sum = 0.0;
            for (int32_t k = 0; k < m; k++) {
                float e = expf(row[k] - mx);
                row[k] = e;
                sum += e;
            }
            const float inv = (float) (1.0 / sum);
            for (int32_t k = 0; k < m; k++) row[k] *= inv;
        }
        for (int32_t k = m; k < n; k++) row[k] = 0.0f;
    }
    /* mean over the window queries; column sums accumulate in double */
    for (int32_t k = 0; k < n; k++) {
        double s = 0.0;
        for (int32_t i = 0; i < w; i++) s += scratch[(size_t) i * n + k];
        mean[k] = (float) (s / w);
    }
    if (j->lastOut != NULL) {
        memcpy(j->lastOut + (size_t) gi * n, scratch + (size_t) (w - 1) * n, sizeof(float) * (size_t) n);
    }
}

int32_t kvs_policy_window_attention(const float *q, int32_t w, int32_t qHeads, int32_t headDim, int32_t h0,
                                    int32_t g, const float *keys, int32_t n, const int64_t *keyPos,
                                    const int64_t *queryPos, float scale, float *meanOut, float *lastOut,
                                    float *scratch) {
    window_job j = {q, w, qHeads * headDim, headDim, h0, n, keys, keyPos, queryPos, scale, meanOut, lastOut};
    kvs_blas_run_items(window_item, &j, g, (int64_t) w * n * headDim, scratch, sizeof(float) * (size_t) w * n);
    return 0;
}

/* One L1 value-norm item: tile t of query head h0 + gi, item = gi * tiles + t. */
typedef struct {
    const float *values, *wo;
    int64_t woRowStride, woHeadStride;
    int32_t n, headDim, modelDim, h0, tile, tiles;
    float *out;
} norms_job;

static void norms_item(void *ctx, int32_t item, float *scratch) {
    const norms_job *j = (const norms_job *) ctx;
    const int32_t gi = item / j->tiles, t0 = (item % j->tiles) * j->tile, h = j->h0 + gi;
    const int32_t headDim = j->headDim, modelDim = j->modelDim;
    const int32_t rows = (j->n - t0 < j->tile) ? (j->n - t0) : j->tile;
    float *dst = j->out + (size_t) gi * j->n;
    /* scratch[t][k] = sum_j V[t0+t][j] * W_o[k][h*d + j]: rows x modelDim, i.e. V_tile . (W_o^h)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, modelDim, headDim, 1.0f,
                j->values + (size_t) t0 * headDim, headDim, j->wo + (size_t) h * j->woHeadStride,
                (int32_t) j->woRowStride, 0.0f, scratch, modelDim);
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

int32_t kvs_policy_value_norms(const float *values, int32_t n, int32_t headDim, const float *wo, int32_t modelDim,
                               int64_t woRowStride, int64_t woHeadStride, int32_t h0, int32_t g, float *out,
                               float *scratch, int32_t tile) {
    const int32_t tiles = (n + tile - 1) / tile;
    norms_job j = {values, wo, woRowStride, woHeadStride, n, headDim, modelDim, h0, tile, tiles, out};
    kvs_blas_run_items(norms_item, &j, g * tiles, (int64_t) (tile < n ? tile : n) * modelDim * headDim, scratch,
                       sizeof(float) * (size_t) tile * modelDim);
    return 0;
}

/* One item of the paired-chain L1 norms: query head h0 + gi, all n rows. */
typedef struct {
    const float *values, *wo;
    int64_t woRowStride, woHeadStride;
    int32_t n, headDim, modelDim, h0;
    float *out;
} paired_job;

/* Sum of |e + o| over k in order, in double, for 8 rows at once (lane = row): adds the four outputs k..k+3. */
static inline void paired_add_abs(__m256 e, __m256 o, __m256d *lo, __m256d *hi) {
    const __m256 v = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_add_ps(e, o));
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static void paired_item(void *ctx, int32_t gi, float *scratch) {
    const paired_job *j = (const paired_job *) ctx;
    const int32_t n = j->n, d = j->headDim, modelDim = j->modelDim;
    const float *wh = j->wo + (size_t) (j->h0 + gi) * j->woHeadStride;
    float *dst = j->out + (size_t) gi * n;
    float *xt = scratch; /* [d][8]: 8 rows' values transposed, zero lanes past the last row */
    for (int32_t t0 = 0; t0 < n; t0 += 8) {
        const int32_t rows = n - t0 < 8 ? n - t0 : 8;
        for (int32_t i = 0; i < d; i++) {
            for (int32_t l = 0; l < 8; l++) xt[i * 8 + l] = l < rows ? j->values[(size_t) (t0 + l) * d + i] : 0.0f;
        }
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        int32_t k = 0;
        for (; k + 4 <= modelDim; k += 4) {
            const float *w0 = wh + (size_t) k * j->woRowStride, *w1 = w0 + j->woRowStride;
            const float *w2 = w1 + j->woRowStride, *w3 = w2 + j->woRowStride;
            __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
            for (int32_t i = 0; i < d; i += 2) {
                const __m256 xe = _mm256_loadu_ps(xt + i * 8), xo = _mm256_loadu_ps(xt + (i + 1) * 8);
                e0 = _mm256_fmadd_ps(xe, _mm256_broadcast_ss(w0 + i), e0);
                e1 = _mm256_fmadd_ps(xe, _mm256_broadcast_ss(w1 + i), e1);
                e2 = _mm256_fmadd_ps(xe, _mm256_broadcast_ss(w2 + i), e2);
                e3 = _mm256_fmadd_ps(xe, _mm256_broadcast_ss(w3 + i), e3);
                o0 = _mm256_fmadd_ps(xo, _mm256_broadcast_ss(w0 + i + 1), o0);
                o1 = _mm256_fmadd_ps(xo, _mm256_broadcast_ss(w1 + i + 1), o1);
                o2 = _mm256_fmadd_ps(xo, _mm256_broadcast_ss(w2 + i + 1), o2);
                o3 = _mm256_fmadd_ps(xo, _mm256_broadcast_ss(w3 + i + 1), o3);
            }
            paired_add_abs(e0, o0, &lo, &hi);
            paired_add_abs(e1, o1, &lo, &hi);
            paired_add_abs(e2, o2, &lo, &hi);
            paired_add_abs(e3, o3, &lo, &hi);
        }
        for (; k < modelDim; k++) {
            const float *w0 = wh + (size_t) k * j->woRowStride;
            __m256 e0 = _mm256_setzero_ps(), o0 = e0;
            for (int32_t i = 0; i < d; i += 2) {
                e0 = _mm256_fmadd_ps(_mm256_loadu_ps(xt + i * 8), _mm256_broadcast_ss(w0 + i), e0);
                o0 = _mm256_fmadd_ps(_mm256_loadu_ps(xt + (i + 1) * 8), _mm256_broadcast_ss(w0 + i + 1), o0);
            }
            paired_add_abs(e0, o0, &lo, &hi);
        }
        double s[8];
        _mm256_storeu_pd(s, lo);
        _mm256_storeu_pd(s + 4, hi);
        for (int32_t l = 0; l < rows; l++) dst[t0 + l] = (float) s[l];
    }
}

int32_t kvs_policy_value_norms_paired(const float *values, int32_t n, int32_t headDim, const float *wo,
                                      int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t h0,
                                      int32_t g, float *out, float *scratch) {
    paired_job j = {values, wo, woRowStride, woHeadStride, n, headDim, modelDim, h0, out};
    kvs_blas_run_items(paired_item, &j, g, (int64_t) n * modelDim * headDim, scratch,
                       sizeof(float) * (size_t) headDim * 8);
    return 0;
}

/* One Gram item: query head h. */
typedef struct {
    const float *wo;
    int64_t woRowStride, woHeadStride;
    int32_t modelDim, headDim;
    float *gram;
} gram_job;

static void gram_item(void *ctx, int32_t h, float *scratch) {
    (void) scratch;
    const gram_job *j = (const gram_job *) ctx;
    const int32_t d = j->headDim;
    /* gram[h] = (W_o^h)^T W_o^h: W_o^h is the modelDim x headDim column block h of W_o */
    const float *slice = j->wo + (size_t) h * j->woHeadStride;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, j->modelDim, 1.0f,
                slice, (int32_t) j->woRowStride, slice, (int32_t) j->woRowStride, 0.0f, j->gram + (size_t) h * d * d, d);
}

int32_t kvs_policy_gram(const float *wo, int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t qHeads,
                        int32_t headDim, float *gram) {
    gram_job j = {wo, woRowStride, woHeadStride, modelDim, headDim, gram};
    kvs_blas_run_items(gram_item, &j, qHeads, (int64_t) headDim * headDim * modelDim, NULL, 0);
    return 0;
}

/* One L2 value-norm item: tile t of every head of the group. */
typedef struct {
    const float *values, *gram;
    int32_t n, d, g, tile;
    float *out;
} l2_job;

static void l2_item(void *ctx, int32_t item, float *scratch) {
    const l2_job *j = (const l2_job *) ctx;
    const int32_t d = j->d, g = j->g, width = g * d, t0 = item * j->tile;
    const int32_t rows = (j->n - t0 < j->tile) ? (j->n - t0) : j->tile;
    /* scratch[t][gi*d + j] = sum_i V[t0+t][i] * G_gi[i][j]; G is symmetric, so the g matrices stored one after
     * the other ([g*d][d] row-major) are B^T of the [d][g*d] right-hand side. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, width, d, 1.0f,
                j->values + (size_t) t0 * d, d, j->gram, d, 0.0f, scratch, width);
    for (int32_t t = 0; t < rows; t++) {
        const float *v = j->values + (size_t) (t0 + t) * d;
        for (int32_t gi = 0; gi < g; gi++) {
            const float *y = scratch + (size_t) t * width + (size_t) gi * d;
            double q = 0.0;
            for (int32_t k = 0; k < d; k++) q += (double) y[k] * v[k];
            j->out[(size_t) gi * j->n + t0 + t] = (float) sqrt(q > 0.0 ? q : 0.0);
        }
    }
}

int32_t kvs_policy_value_l2_norms(const float *values, int32_t n, int32_t headDim, const float *gram, int32_t g,
                                  float *out, float *scratch, int32_t tile) {
    const int32_t width = g * headDim;
    l2_job j = {values, gram, n, headDim, g, tile, out};
    kvs_blas_run_items(l2_item, &j, (n + tile - 1) / tile, (int64_t) (tile < n ? tile : n) * width * headDim,
                       scratch, sizeof(float) * (size_t) tile * width);
    return 0;
}
