/* Shared pieces of the attention kernels: element loaders, a vector exp, the worker pool and per-thread scratch. */
#ifndef KVS_ATTN_INTERNAL_H
#define KVS_ATTN_INTERNAL_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "kvslab.h"

#define KVS_INLINE static inline __attribute__((always_inline))

/* ---- element loaders: dtype is a compile-time constant at every call site (the kernels are instantiated
 * once per dtype), so each of these folds to a single load (+ conversion). ---- */

KVS_INLINE __m256 kvs_load8(const char* row, int64_t col, int dtype) {
    if (dtype == KVS_DTYPE_F32) {
        return _mm256_loadu_ps((const float*)row + col);
    }
    __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)row + col));
    if (dtype == KVS_DTYPE_F16) {
        return _mm256_cvtph_ps(h);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

KVS_INLINE float kvs_load1(const char* row, int64_t col, int dtype) {
    if (dtype == KVS_DTYPE_F32) {
        return ((const float*)row)[col];
    }
    uint16_t h = ((const uint16_t*)row)[col];
    if (dtype == KVS_DTYPE_F16) {
        return _cvtsh_ss(h);
    }
    union { uint32_t u; float f; } b = {(uint32_t)h << 16};
    return b.f;
}

static inline int kvs_dtype_bytes(int dtype) { return dtype == KVS_DTYPE_F32 ? 4 : 2; }

/* ---- exp for arguments <= 0 (scores minus their running max). Range reduction x = n*ln2 + r, |r| <= ln2/2,
 * degree-6 Taylor polynomial for e^r (relative error < 2e-7), 2^n built in the exponent bits. Arguments below
 * -87 are clamped (e^-87 ~ 1.6e-38 is negligible next to the max term, which is 1); NaN propagates. ---- */
KVS_INLINE __m256 kvs_exp_neg(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x); /* second operand returned for NaN: keeps NaN */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

KVS_INLINE float kvs_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KVS_INLINE float kvs_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Horizontal sums of 8 vectors at once: lane i of the result is the sum of a[i]. */
KVS_INLINE __m256 kvs_hsum8(const __m256* a) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]);
    __m256 t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]);
    __m256 t3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1);
    __m256 u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* ---- persistent worker pool ----
 * kvs_pool_run calls fn(ctx, w, n) for w in [0, n) and returns when all calls have returned; w = 0 runs on the
 * calling thread. n may come out smaller than asked: when threads cannot be started, or when another caller is
 * using the pool right now (then n = 1 and the caller does all the work instead of waiting). fn must therefore
 * partition its work by the n it is given. */
typedef void (*kvs_task_fn)(void* ctx, int w, int n);
void kvs_pool_run(kvs_task_fn fn, void* ctx, int n_threads);

/* ---- per-thread scratch: one growable 64-byte-aligned buffer per (thread, slot), freed at thread exit.
 * Slot 0 is for the calling thread's bookkeeping of one kernel call, slot 1+ for the work of one worker. ---- */
#define KVS_SCRATCH_DISPATCH 0
#define KVS_SCRATCH_WORK 1
#define KVS_SCRATCH_WORK2 2
#define KVS_SCRATCH_SLOTS 3
void* kvs_scratch(int slot, size_t bytes);

/* Software prefetch of the decode kernel: the tile KVS_PF_TILES tiles ahead is prefetched line by line in
 * address order, as many bytes per microkernel step as that step consumes of the current tile (K during the score
 * pass, V during the value passes), so misses stay in flight continuously rather than in bursts and form one
 * sequential stream per block. Every line, not a few per page: the hardware prefetchers do little for 8-16 KiB
 * blocks scattered over a slab, and sparser software prefetching (one line per 256 B or per page) measured about
 * half as fast; address order measured ~10-15% faster than mirroring the (row-interleaved) load order.
 * Both are compile-time knobs for tuning (-D...). */
#ifndef KVS_PF_TILES
#define KVS_PF_TILES 1
#endif
#ifndef KVS_PF_HINT
#define KVS_PF_HINT _MM_HINT_T0
#endif
#define KVS_PREFETCH(p) _mm_prefetch((const char*)(p), KVS_PF_HINT)

#endif
