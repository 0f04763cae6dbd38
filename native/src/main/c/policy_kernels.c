/*
 * Native kernels of the compression-policy layer (io.kvslab.kernel.PolicyKernels binds them).
 *
 * The kernels are matrix products followed by a cheap per-row reduction, so the product goes to OpenBLAS
 * (cblas_sgemm) and the reduction is a plain loop. Everything is fp32; reductions accumulate in double so the
 * result does not depend on the summation order of a long row. The exception is the L1 norms of a subset of rows
 * (kvs_policy_value_norms_fused): there the product's elements are computed in registers with the arithmetic
 * OpenBLAS would use for each (decoded by kvs_policy_l1_chain_masks) and reduced at once, same bits, no product in
 * memory.
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
#include <stdlib.h>
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

/* ---- Fused L1 norms: the product's elements in registers, never in memory (ABI 8) ----
 *
 * Each element of the norm product is one of two known fp32 computations (see policy_kernels.h): one fused
 * multiply-add chain from zero over j = 0..headDim-1 ("single"), or two such chains over the even and the odd j
 * added at the end ("paired"). Which one OpenBLAS uses depends on the row's slot kind and on the output index;
 * kvs_policy_l1_chain_masks decodes that for this build and CPU, and the fused kernel replays it. The sums of |.|
 * over the outputs run in double, in k order, exactly as norms_item's reduction does. */

enum { FUSED_ROWS = 16, FUSED_GROUPS = 2, FUSED_SINGLE_NB = 6, FUSED_PAIRED_NB = 3 };

/* Adds |a| (8 rows, lane = row) to the rows' double sums lo (lanes 0-3) and hi (lanes 4-7). */
static inline __attribute__((always_inline)) void fused_add_abs(__m256 a, __m256d *lo, __m256d *hi) {
    const __m256 v = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

/* NB consecutive outputs (W_o rows w, w + ws, ...) of 16 rows (xt: [d][16], lane = row), one chain each: 12
 * independent accumulators at NB = 6 cover the FMA latency of both pipes; per j two loads of x and NB broadcasts. */
static inline __attribute__((always_inline)) void fused_single(const float *xt, int32_t d, const float *w, int64_t ws,
                                                               const int NB, __m256d s[4]) {
    __m256 a0[FUSED_SINGLE_NB], a1[FUSED_SINGLE_NB];
    for (int b = 0; b < NB; b++) a0[b] = a1[b] = _mm256_setzero_ps();
    for (int32_t i = 0; i < d; i++) {
        const __m256 x0 = _mm256_load_ps(xt + (size_t) i * FUSED_ROWS), x1 = _mm256_load_ps(xt + (size_t) i * FUSED_ROWS + 8);
        for (int b = 0; b < NB; b++) {
            const __m256 wb = _mm256_broadcast_ss(w + b * ws + i);
            a0[b] = _mm256_fmadd_ps(x0, wb, a0[b]);
            a1[b] = _mm256_fmadd_ps(x1, wb, a1[b]);
        }
    }
    for (int b = 0; b < NB; b++) { /* output k, then k + 1, ...: each row's terms in k order */
        fused_add_abs(a0[b], &s[0], &s[1]);
        fused_add_abs(a1[b], &s[2], &s[3]);
    }
}

/* As fused_single, each output as two chains (even j, odd j) added in fp32 at the end. d is even. */
static inline __attribute__((always_inline)) void fused_paired(const float *xt, int32_t d, const float *w, int64_t ws,
                                                               const int NB, __m256d s[4]) {
    __m256 e0[FUSED_PAIRED_NB], e1[FUSED_PAIRED_NB], o0[FUSED_PAIRED_NB], o1[FUSED_PAIRED_NB];
    for (int b = 0; b < NB; b++) e0[b] = e1[b] = o0[b] = o1[b] = _mm256_setzero_ps();
    for (int32_t i = 0; i < d; i += 2) {
        const float *x = xt + (size_t) i * FUSED_ROWS;
        const __m256 xe0 = _mm256_load_ps(x), xe1 = _mm256_load_ps(x + 8);
        const __m256 xo0 = _mm256_load_ps(x + FUSED_ROWS), xo1 = _mm256_load_ps(x + FUSED_ROWS + 8);
        for (int b = 0; b < NB; b++) {
            const __m256 we = _mm256_broadcast_ss(w + b * ws + i), wo = _mm256_broadcast_ss(w + b * ws + i + 1);
            e0[b] = _mm256_fmadd_ps(xe0, we, e0[b]);
            e1[b] = _mm256_fmadd_ps(xe1, we, e1[b]);
            o0[b] = _mm256_fmadd_ps(xo0, wo, o0[b]);
            o1[b] = _mm256_fmadd_ps(xo1, wo, o1[b]);
        }
    }
    for (int b = 0; b < NB; b++) {
        fused_add_abs(_mm256_add_ps(e0[b], o0[b]), &s[0], &s[1]);
        fused_add_abs(_mm256_add_ps(e1[b], o1[b]), &s[2], &s[3]);
    }
}

/* Outputs [k0, k1) of one 16-row group, all of one arithmetic, in blocks of NB and one shorter block. */
static void fused_run(const float *xt, int32_t d, const float *wh, int64_t ws, int32_t k0, int32_t k1, int paired,
                      __m256d s[4]) {
    int32_t k = k0;
    if (!paired) {
        for (; k + FUSED_SINGLE_NB <= k1; k += FUSED_SINGLE_NB) fused_single(xt, d, wh + k * ws, ws, 6, s);
        switch (k1 - k) {
        case 5: fused_single(xt, d, wh + k * ws, ws, 5, s); break;
        case 4: fused_single(xt, d, wh + k * ws, ws, 4, s); break;
        case 3: fused_single(xt, d, wh + k * ws, ws, 3, s); break;
        case 2: fused_single(xt, d, wh + k * ws, ws, 2, s); break;
        case 1: fused_single(xt, d, wh + k * ws, ws, 1, s); break;
        default: break;
        }
    } else {
        for (; k + FUSED_PAIRED_NB <= k1; k += FUSED_PAIRED_NB) fused_paired(xt, d, wh + k * ws, ws, 3, s);
        switch (k1 - k) {
        case 2: fused_paired(xt, d, wh + k * ws, ws, 2, s); break;
        case 1: fused_paired(xt, d, wh + k * ws, ws, 1, s); break;
        default: break;
        }
    }
}

/* One fused item: FUSED_GROUPS groups of 16 rows (all of one kind) of query head h0 + gi. */
typedef struct {
    const float *values, *wo;
    int64_t woRowStride, woHeadStride;
    int32_t n, headDim, modelDim, h0, itemsPerHead;
    const int32_t *kindEnds;
    const uint8_t *masks;
    float *out;
} fused_job;

static void fused_item(void *ctx, int32_t item, float *scratch) {
    const fused_job *j = (const fused_job *) ctx;
    const int32_t gi = item / j->itemsPerHead, d = j->headDim, modelDim = j->modelDim;
    const int32_t r0 = (item % j->itemsPerHead) * FUSED_ROWS * FUSED_GROUPS;
    const int32_t groups = (j->n - r0) / FUSED_ROWS < FUSED_GROUPS ? (j->n - r0) / FUSED_ROWS : FUSED_GROUPS;
    const float *wh = j->wo + (size_t) (j->h0 + gi) * j->woHeadStride;
    const int64_t ws = j->woRowStride;
    float *xt = (float *) (((uintptr_t) scratch + 31) & ~(uintptr_t) 31); /* [groups][d][16] */
    __m256d s[FUSED_GROUPS][4];
    const uint8_t *mask[FUSED_GROUPS];
    for (int32_t gr = 0; gr < groups; gr++) {
        const int32_t row0 = r0 + gr * FUSED_ROWS;
        int kd = 0;
        while (row0 >= j->kindEnds[kd]) kd++; /* every 16-row group is of one kind (segments are padded to 16) */
        mask[gr] = j->masks + (size_t) kd * modelDim;
        float *x = xt + (size_t) gr * d * FUSED_ROWS;
        for (int32_t l = 0; l < FUSED_ROWS; l++) {
            const float *v = j->values + (size_t) (row0 + l) * d;
            for (int32_t i = 0; i < d; i++) x[(size_t) i * FUSED_ROWS + l] = v[i];
        }
        for (int q = 0; q < 4; q++) s[gr][q] = _mm256_setzero_pd();
    }
    /* outputs in runs of one arithmetic (per group's kind), in k order; a run of W_o rows stays in L1 for the groups
     * (runs are cut at 48 outputs: 24 KiB of W_o at headDim 128) */
    int32_t k0 = 0;
    while (k0 < modelDim) {
        int32_t k1 = k0 + 48 < modelDim ? k0 + 48 : modelDim;
        for (int32_t gr = 0; gr < groups; gr++) {
            for (int32_t k = k0 + 1; k < k1; k++) {
                if (mask[gr][k] != mask[gr][k0]) { k1 = k; break; }
            }
        }
        for (int32_t gr = 0; gr < groups; gr++) {
            fused_run(xt + (size_t) gr * d * FUSED_ROWS, d, wh, ws, k0, k1, mask[gr][k0], s[gr]);
        }
        k0 = k1;
    }
    float *dst = j->out + (size_t) gi * j->n;
    for (int32_t gr = 0; gr < groups; gr++) {
        double sum[FUSED_ROWS];
        for (int q = 0; q < 4; q++) _mm256_storeu_pd(sum + 4 * q, s[gr][q]);
        for (int32_t l = 0; l < FUSED_ROWS; l++) dst[r0 + gr * FUSED_ROWS + l] = (float) sum[l];
    }
}

int32_t kvs_policy_value_norms_fused(const float *values, int32_t n, int32_t headDim, const float *wo,
                                     int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t h0,
                                     int32_t g, const int32_t *kindEnds, const uint8_t *masks, float *out,
                                     float *scratch) {
    const int32_t perItem = FUSED_ROWS * FUSED_GROUPS, itemsPerHead = (n + perItem - 1) / perItem;
    fused_job j = {values, wo, woRowStride, woHeadStride, n, headDim, modelDim, h0, itemsPerHead, kindEnds, masks, out};
    kvs_blas_run_items(fused_item, &j, g * itemsPerHead, (int64_t) (perItem < n ? perItem : n) * modelDim * headDim,
                       scratch, sizeof(float) * ((size_t) FUSED_GROUPS * headDim * FUSED_ROWS + 8));
    return 0;
}

/* ---- Decoding the norm product's arithmetic on this build and CPU ---- */

static uint32_t chain_rand(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static int slot_kind(int32_t p, int32_t m) { /* RowPacking.kind */
    const int32_t full = m / 12 * 12;
    if (p < full) return p % 12 < 6 ? 0 : 1;
    const int32_t q = p - full, r = m - full;
    if (r >= 8 && q < 8) return 3;
    if (r < 8 && r >= 4 && q < 4) return 2;
    return 1;
}

int32_t kvs_policy_l1_chain_masks(int32_t modelDim, int32_t headDim, int32_t tile, uint8_t *masks) {
    if (headDim % 2 != 0 || tile < 20) return 1;
    /* products of `tile` rows (its first block: kinds A and B; its m mod 12 last rows: that height's remainder), 20
     * (the last 8: Q8) and 16 (the last 4: Q4). Round 0 compares every output of those rows; the two computations
     * give the same float for some elements, so later rounds (fresh rows) compare only the outputs still undecided. */
    const int32_t heights[3] = {tile, 20, 16};
    const size_t wn = (size_t) modelDim * headDim;
    float *w = malloc(sizeof(float) * wn), *v = malloc(sizeof(float) * (size_t) tile * headDim);
    float *c = malloc(sizeof(float) * (size_t) tile * modelDim);
    uint8_t *seen = calloc((size_t) 4 * modelDim, 1); /* bit 0: a sample only the single chain matched, bit 1: paired */
    int32_t rc = 0;
    if (w == NULL || v == NULL || c == NULL || seen == NULL) {
        rc = 2;
        goto done;
    }
    uint32_t st = 0x5EEDu;
    for (size_t i = 0; i < wn; i++) w[i] = (float) ((int32_t) (chain_rand(&st) % 2001) - 1000) / 997.0f;
    kvs_blas_single_enter();
    for (int round = 0; round < 16 && rc == 0; round++) {
        int undecided = 0;
        for (size_t e = 0; e < (size_t) 4 * modelDim; e++) undecided += seen[e] == 0;
        if (round > 0 && undecided == 0) break;
        for (int h = 0; h < 3 && rc == 0; h++) {
            const int32_t m = heights[h];
            for (size_t i = 0; i < (size_t) m * headDim; i++) {
                v[i] = (float) ((int32_t) (chain_rand(&st) % 2001) - 1000) / 997.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, modelDim, headDim, 1.0f, v, headDim, w, headDim,
                        0.0f, c, modelDim);
            for (int32_t p = 0; p < m && rc == 0; p++) {
                if (p >= 12 && p < m / 12 * 12) continue;  /* the tall product's first block and its remainder */
                if (h > 0 && p < m / 12 * 12) continue;    /* the short products' remainder */
                const int kd = slot_kind(p, m);
                const float *x = v + (size_t) p * headDim;
                for (int32_t k = 0; k < modelDim; k++) {
                    if (round > 0 && seen[(size_t) kd * modelDim + k] != 0) continue;
                    const float *wk = w + (size_t) k * headDim;
                    float one = 0.0f, e = 0.0f, o = 0.0f;
                    for (int32_t i = 0; i < headDim; i += 2) {
                        one = fmaf(x[i], wk[i], one);
                        one = fmaf(x[i + 1], wk[i + 1], one);
                        e = fmaf(x[i], wk[i], e);
                        o = fmaf(x[i + 1], wk[i + 1], o);
                    }
                    const float two = e + o, got = c[(size_t) p * modelDim + k];
                    const int isOne = memcmp(&got, &one, 4) == 0, isTwo = memcmp(&got, &two, 4) == 0;
                    if (!isOne && !isTwo) {
                        rc = 3; /* neither: another arithmetic */
                        break;
                    }
                    if (isOne != isTwo) seen[(size_t) kd * modelDim + k] |= isOne ? 1 : 2;
                }
            }
        }
    }
    kvs_blas_single_leave();
    for (size_t e = 0; rc == 0 && e < (size_t) 4 * modelDim; e++) {
        if (seen[e] != 1 && seen[e] != 2) rc = 4; /* both kinds of sample, or none that told them apart in 16 rounds */
        masks[e] = seen[e] == 2;
    }
done:
    free(w);
    free(v);
    free(c);
    free(seen);
    return rc;
}
