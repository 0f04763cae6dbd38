/* Shared pieces of the attention kernels: element loaders, a vector exp, the worker pool and per-thread scratch. */
#ifndef KVS_ATTN_INTERNAL_H
#define KVS_ATTN_INTERNAL_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "kvslab.h"

#define KVS_INLINE static inline __attribute__((always_inline))

/* ---- element loaders: dtype is a compile-time constant at every call site (the kernels are instantiated
 * once per dtype), so each of these folds to a single load (+ conversion). rb is the row's bytes: quantised rows
 * (q8_0, q4_0) find their group layout from it (see kvs_qgroup); the other dtypes ignore it. ---- */

KVS_INLINE int kvs_quantised(int dtype) { return dtype == KVS_DTYPE_Q8_0 || dtype == KVS_DTYPE_Q4_0; }

/* The group holding column col of a quantised row: returns its address, sets *o (col's offset in the group) and
 * *g (values per group). Rows of head_dim >= 32 have 32-value groups (rb >= 34 for q8_0, >= 18 for q4_0); a
 * shorter row is one group of head_dim values (rb = 2 + head_dim, or 2 + head_dim/2), so rb alone tells them
 * apart and the kernels need no further argument. */
KVS_INLINE const char* kvs_qgroup(const char* row, int64_t col, int dtype, int64_t rb, int64_t* o, int64_t* g) {
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    if (rb >= full) {
        *g = 32;
        *o = col & 31;
        return row + (col >> 5) * full;
    }
    *g = dtype == KVS_DTYPE_Q8_0 ? rb - 2 : 2 * (rb - 2);
    *o = col;
    return row;
}

KVS_INLINE float kvs_qscale(const char* group) {
    uint16_t h;
    __builtin_memcpy(&h, group, 2);
    return _cvtsh_ss(h);
}

KVS_INLINE float kvs_load1(const char* row, int64_t col, int dtype, int64_t rb) {
    if (dtype == KVS_DTYPE_F32) {
        return ((const float*)row)[col];
    }
    if (kvs_quantised(dtype)) {
        int64_t o, g;
        const char* grp = kvs_qgroup(row, col, dtype, rb, &o, &g);
        const uint8_t* qs = (const uint8_t*)grp + 2;
        if (dtype == KVS_DTYPE_Q8_0) return (float)(int8_t)qs[o] * kvs_qscale(grp);
        int64_t half = g / 2;
        int code = o < half ? (qs[o] & 15) : (qs[o - half] >> 4);
        return (float)(code - 8) * kvs_qscale(grp);
    }
    uint16_t h = ((const uint16_t*)row)[col];
    if (dtype == KVS_DTYPE_F16) {
        return _cvtsh_ss(h);
    }
    union { uint32_t u; float f; } b = {(uint32_t)h << 16};
    return b.f;
}

/* 8 codes of a q4_0 group from value o on (o a multiple of 8), as int32 lanes 0..15. The 8 values are low nibbles
 * (o + 8 <= g/2), high nibbles (o >= g/2), or, for a group of exactly 8 values, 4 of each. */
KVS_INLINE __m256i kvs_q4_codes8(const uint8_t* qs, int64_t o, int64_t g) {
    const int64_t half = g / 2;
    if (o + 8 <= half) {
        return _mm256_and_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qs + o))),
                                _mm256_set1_epi32(15));
    }
    if (o >= half) {
        return _mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qs + o - half))), 4);
    }
    if (g == 8) {
        uint32_t w;
        __builtin_memcpy(&w, qs, 4);
        __m128i b = _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)w));
        return _mm256_set_m128i(_mm_srli_epi32(b, 4), _mm_and_si128(b, _mm_set1_epi32(15)));
    }
    int32_t c[8]; /* a group straddling the halves in another way (head_dim 24, ...): lane by lane */
    for (int i = 0; i < 8; i++) c[i] = o + i < half ? (qs[o + i] & 15) : (qs[o + i - half] >> 4);
    return _mm256_loadu_si256((const __m256i*)c);
}

KVS_INLINE __m256 kvs_load8(const char* row, int64_t col, int dtype, int64_t rb) {
    if (dtype == KVS_DTYPE_F32) {
        return _mm256_loadu_ps((const float*)row + col);
    }
    if (kvs_quantised(dtype)) {
        int64_t o, g;
        const char* grp = kvs_qgroup(row, col, dtype, rb, &o, &g);
        const uint8_t* qs = (const uint8_t*)grp + 2;
        __m256i q;
        if (dtype == KVS_DTYPE_Q8_0) {
            q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(qs + o)));
        } else {
            q = _mm256_sub_epi32(kvs_q4_codes8(qs, o, g), _mm256_set1_epi32(8));
        }
        return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(kvs_qscale(grp)));
    }
    __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)row + col));
    if (dtype == KVS_DTYPE_F16) {
        return _mm256_cvtph_ps(h);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Bytes of the first n values of a row (n a multiple of the group size, or any n for a rough figure): what the
 * decode kernels' prefetch advances by. */
KVS_INLINE int64_t kvs_span_bytes(int dtype, int64_t rb, int64_t n) {
    if (dtype == KVS_DTYPE_F32) return 4 * n;
    if (!kvs_quantised(dtype)) return 2 * n;
    int64_t o, g;
    (void)kvs_qgroup(NULL, 0, dtype, rb, &o, &g);
    return n * (dtype == KVS_DTYPE_Q8_0 ? g + 2 : g / 2 + 2) / g;
}

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

/* Software prefetch of the decode kernel: the tile visited next (attn_decode_impl.h's run_chunk) is prefetched line
 * by line in address order, as many bytes per microkernel step as that step consumes of the current tile (K during the score
 * pass, V during the value passes), so misses stay in flight continuously rather than in bursts and form one
 * sequential stream per block. Every line, not a few per page: the hardware prefetchers do little for 8-16 KiB
 * blocks scattered over a slab, and sparser software prefetching (one line per 256 B or per page) measured about
 * half as fast; address order measured ~10-15% faster than mirroring the (row-interleaved) load order.
 * The hint is a compile-time knob for tuning (-DKVS_PF_HINT=...); two tiles ahead measured no better
 * (docs/benchmarks.md). */
#ifndef KVS_PF_HINT
#define KVS_PF_HINT _MM_HINT_T0
#endif
#define KVS_PREFETCH(p) _mm_prefetch((const char*)(p), KVS_PF_HINT)

#endif
