/* Causal prefill attention over paged K/V, flash-attention style on top of OpenBLAS sgemm.
 *
 * Work item: one kv head and a chunk of consecutive query tokens; its M = tokens x group query rows form one
 * matrix, so a tile of keys is dequantised once into a contiguous f32 buffer and multiplied with all of them
 * (S = Q K^T, then O += P V), which is where a matrix product pays. Online softmax per query row keeps memory
 * independent of the context length. Rows a query cannot see (the causal mask) are skipped where a whole tile
 * is invisible to the first queries of a chunk, and zeroed in the tile that straddles the diagonal.
 * Items are handed out dynamically (largest first) to the caller and the pool workers. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>

#include "blas_threads.h"
#include <stdatomic.h>
#include <string.h>
#include "attn_internal.h"

#ifndef KT
#define KT 128          /* keys per tile */
#endif
#ifndef MAX_ROWS
#define MAX_ROWS 256    /* query rows (tokens x group) per work item, unless one token's group is larger */
#endif
#define MIN_FLOPS_PER_THREAD (4.0e6)

typedef struct {
    int n_kv, G, D, k_dtype, v_dtype, br, n_q;
    int64_t krb, vrb; /* bytes per K row, per V row */
    const float* q;
    const int64_t *kb, *vb, *off, *len;
    float scale;
    float* out;
    int qc;             /* query tokens per item */
    int rows_cap;       /* qc * G: query rows of the largest item (buffer size) */
    int chunks;         /* items per kv head */
    int n_items;
    _Atomic int next;
    _Atomic int error;
} prefill_job;

/* Copies rows [k0, k0 + kt) of one head's blocks into dst[kt][D] as f32. */
KVS_INLINE void gather_rows(int dtype, const int64_t* blocks, int br, int64_t rb, int D, int64_t k0, int kt,
                            float* dst) {
    for (int i = 0; i < kt; i++) {
        int64_t r = k0 + i;
        const char* row = (const char*)(intptr_t)blocks[r / br] + (r % br) * rb;
        float* d = dst + (int64_t)i * D;
        int c = 0;
        for (; c + 8 <= D; c += 8) _mm256_storeu_ps(d + c, kvs_load8(row, c, dtype, rb));
        for (; c < D; c++) d[c] = kvs_load1(row, c, dtype, rb);
    }
}

static void gather(int dtype, const int64_t* blocks, int br, int64_t rb, int D, int64_t k0, int kt, float* dst) {
    if (dtype == KVS_DTYPE_F32) gather_rows(KVS_DTYPE_F32, blocks, br, rb, D, k0, kt, dst);
    else if (dtype == KVS_DTYPE_F16) gather_rows(KVS_DTYPE_F16, blocks, br, rb, D, k0, kt, dst);
    else if (dtype == KVS_DTYPE_BF16) gather_rows(KVS_DTYPE_BF16, blocks, br, rb, D, k0, kt, dst);
    else if (dtype == KVS_DTYPE_Q8_0) gather_rows(KVS_DTYPE_Q8_0, blocks, br, rb, D, k0, kt, dst); /* dequantised */
    else gather_rows(KVS_DTYPE_Q4_0, blocks, br, rb, D, k0, kt, dst);
}

/* Online softmax over one row of scores: the first vis of kt columns are visible; p written in place (0 for
 * the masked columns); returns corr, the factor for the row's running output. */
static float softmax_row(float* s, int kt, int vis, float* m, float* l) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int c = 0;
    for (; c + 8 <= vis; c += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + c));
    float mt = kvs_hmax(mx);
    for (; c < vis; c++) mt = s[c] > mt ? s[c] : mt;
    float mn = *m > mt ? *m : mt;
    float corr = *m == -INFINITY ? 0.0f : expf(*m - mn);
    *m = mn;
    __m256 mv = _mm256_set1_ps(mn);
    __m256 sum = _mm256_setzero_ps();
    for (c = 0; c < kt; c += 8) { /* the row has KT >= round_up(kt, 8) floats */
        __m256 p = kvs_exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + c), mv));
        if (c + 8 > vis) {
            __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(vis - c), lane);
            p = _mm256_and_ps(p, _mm256_castsi256_ps(valid));
        }
        _mm256_storeu_ps(s + c, p);
        sum = _mm256_add_ps(sum, p);
    }
    *l = *l * corr + kvs_hsum(sum);
    return corr;
}

static void run_item(prefill_job* j, int item, float* buf) {
    const int G = j->G, D = j->D;
    int h = item / j->chunks;
    int chunk = j->chunks - 1 - item % j->chunks; /* later chunks see more keys: hand them out first */
    int i0 = chunk * j->qc;
    int i1 = i0 + j->qc < j->n_q ? i0 + j->qc : j->n_q;
    int M = (i1 - i0) * G;
    const size_t cap = (size_t)j->rows_cap;
    float* Q = buf;
    float* acc = Q + cap * D;
    float* S = acc + cap * D;
    float* Kt = S + cap * KT;
    float* Vt = Kt + (size_t)KT * D;
    float* m = Vt + (size_t)KT * D;
    float* l = m + cap;
    for (int i = i0; i < i1; i++) {
        for (int g = 0; g < G; g++) {
            const float* src = j->q + (((int64_t)i * j->n_kv + h) * G + g) * D;
            float* dst = Q + (size_t)((i - i0) * G + g) * D;
            for (int d = 0; d < D; d++) dst[d] = src[d] * j->scale;
        }
    }
    memset(acc, 0, sizeof(float) * (size_t)M * D);
    for (int r = 0; r < M; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    const int64_t* kbl = j->kb + j->off[h];
    const int64_t* vbl = j->vb + j->off[h];
    const int64_t base = j->len[h] - j->n_q; /* query i sees rows 0 .. base + i */
    const int64_t kend = base + i1;
    for (int64_t k0 = 0; k0 < kend; k0 += KT) {
        int kt = kend - k0 < KT ? (int)(kend - k0) : KT;
        gather(j->k_dtype, kbl, j->br, j->krb, D, k0, kt, Kt);
        gather(j->v_dtype, vbl, j->br, j->vrb, D, k0, kt, Vt);
        int64_t first = k0 - base > i0 ? k0 - base : i0; /* first query seeing row k0 */
        int rs = (int)(first - i0) * G;
        int mr = M - rs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mr, kt, D, 1.0f, Q + (size_t)rs * D, D, Kt, D, 0.0f,
                    S + (size_t)rs * KT, KT);
        for (int r = rs; r < M; r++) {
            int64_t i = i0 + r / G;
            int64_t vis = base + i - k0 + 1;
            if (vis > kt) vis = kt;
            float corr = softmax_row(S + (size_t)r * KT, kt, (int)vis, &m[r], &l[r]);
            if (corr != 1.0f) {
                float* a = acc + (size_t)r * D;
                for (int d = 0; d < D; d++) a[d] *= corr;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mr, D, kt, 1.0f, S + (size_t)rs * KT, KT, Vt, D, 1.0f,
                    acc + (size_t)rs * D, D);
    }
    for (int i = i0; i < i1; i++) {
        for (int g = 0; g < G; g++) {
            int r = (i - i0) * G + g;
            float inv = 1.0f / l[r];
            float* dst = j->out + (((int64_t)i * j->n_kv + h) * G + g) * D;
            for (int d = 0; d < D; d++) dst[d] = acc[(size_t)r * D + d] * inv;
        }
    }
}

static size_t item_floats(int D, int rows) {
    return (size_t)rows * D * 2 + (size_t)rows * KT + (size_t)KT * D * 2 + (size_t)rows * 2;
}

static void prefill_task(void* ctx, int w, int n) {
    (void)w;
    (void)n;
    prefill_job* j = (prefill_job*)ctx;
    float* buf = (float*)kvs_scratch(KVS_SCRATCH_WORK2, item_floats(j->D, j->rows_cap) * sizeof(float));
    if (buf == NULL) {
        atomic_store(&j->error, KVS_ERR_NO_MEMORY);
        return;
    }
    for (;;) {
        int item = atomic_fetch_add(&j->next, 1);
        if (item >= j->n_items) return;
        run_item(j, item, buf);
    }
}

/* OpenBLAS threading during a prefill: KVSlab runs the work items on its own workers, so nested OpenBLAS threads
 * would only oversubscribe the cores (and a caller asking for 1 thread would get OpenBLAS's default): the whole
 * prefill runs inside kvs_blas_single_enter/leave (blas_threads.h). */

int32_t kvs_attn_prefill(int32_t n_kv, int32_t group, int32_t head_dim, int32_t k_dtype, int32_t v_dtype,
                         int32_t block_rows, int32_t n_q, const float* q, const int64_t* k_blocks, const int64_t* v_blocks,
                         const int64_t* off, const int64_t* len, float scale, float* out, int32_t n_threads) {
    if (n_kv <= 0 || group <= 0 || head_dim <= 0 || block_rows <= 0 || n_q <= 0
        || kvs_row_bytes(k_dtype, head_dim) < 0 || kvs_row_bytes(v_dtype, head_dim) < 0 || n_threads <= 0 || n_threads > KVS_MAX_THREADS || q == NULL || out == NULL
        || k_blocks == NULL || v_blocks == NULL || off == NULL || len == NULL) {
        return KVS_ERR_ARGUMENT;
    }
    for (int h = 0; h < n_kv; h++) {
        if (len[h] < n_q) return KVS_ERR_ARGUMENT;
    }
    prefill_job j;
    memset(&j, 0, sizeof j);
    j.n_kv = n_kv;
    j.G = group;
    j.D = head_dim;
    j.k_dtype = k_dtype;
    j.v_dtype = v_dtype;
    j.br = block_rows;
    j.n_q = n_q;
    j.krb = kvs_row_bytes(k_dtype, head_dim);
    j.vrb = kvs_row_bytes(v_dtype, head_dim);
    j.q = q;
    j.kb = k_blocks;
    j.vb = v_blocks;
    j.off = off;
    j.len = len;
    j.scale = scale;
    j.out = out;
    j.qc = group < MAX_ROWS ? MAX_ROWS / group : 1;
    if (j.qc > n_q) j.qc = n_q;
    j.rows_cap = j.qc * group;
    j.chunks = (n_q + j.qc - 1) / j.qc;
    j.n_items = j.chunks * n_kv;
    double flops = 0;
    for (int h = 0; h < n_kv; h++) flops += 4.0 * group * head_dim * (double)n_q * (double)(len[h] - n_q / 2);
    int n = n_threads < j.n_items ? n_threads : j.n_items;
    if (flops / MIN_FLOPS_PER_THREAD < n) n = flops < MIN_FLOPS_PER_THREAD ? 1 : (int)(flops / MIN_FLOPS_PER_THREAD);
    kvs_blas_single_enter();
    kvs_pool_run(prefill_task, &j, n);
    kvs_blas_single_leave();
    return atomic_load(&j.error);
}
