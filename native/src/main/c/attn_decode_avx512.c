/* Decode chunk kernels with 512-bit vectors, compiled for AVX-512 here only and called only when cpuid says
 * the machine has it (see attention.c). On cores with full-width 512-bit FMA units this doubles the arithmetic
 * per instruction, which is what lets a core keep up with its share of memory bandwidth in f16. */
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#include <math.h>
#include <string.h>
#include "attn_decode.h"

/* 16 codes of a q4_0 group from value o on (o a multiple of 16), as int32 lanes 0..15: low nibbles, high
 * nibbles, or for a group of exactly 16 values 8 of each. */
KVS_INLINE __m512i kvs_q4_codes16(const uint8_t* qs, int64_t o, int64_t g) {
    const int64_t half = g / 2;
    if (o + 16 <= half) {
        return _mm512_and_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qs + o))),
                                _mm512_set1_epi32(15));
    }
    if (o >= half) {
        return _mm512_srli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qs + o - half))), 4);
    }
    if (g == 16) {
        __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)qs));
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, _mm256_set1_epi32(15))),
                                  _mm256_srli_epi32(b, 4), 1);
    }
    int32_t c[16]; /* other straddling groups: lane by lane (unused: AVX-512 runs only head dims % 16 == 0) */
    for (int i = 0; i < 16; i++) c[i] = o + i < half ? (qs[o + i] & 15) : (qs[o + i - half] >> 4);
    return _mm512_loadu_si512(c);
}

KVS_INLINE __m512 kvs_load16(const char* row, int64_t col, int dtype, int64_t rb) {
    if (dtype == KVS_DTYPE_F32) {
        return _mm512_loadu_ps((const float*)row + col);
    }
    if (kvs_quantised(dtype)) {
        int64_t o, g;
        const char* grp = kvs_qgroup(row, col, dtype, rb, &o, &g);
        const uint8_t* qs = (const uint8_t*)grp + 2;
        __m512i q;
        if (dtype == KVS_DTYPE_Q8_0) {
            q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(qs + o)));
        } else {
            q = _mm512_sub_epi32(kvs_q4_codes16(qs, o, g), _mm512_set1_epi32(8));
        }
        return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(kvs_qscale(grp)));
    }
    __m256i h = _mm256_loadu_si256((const __m256i*)((const uint16_t*)row + col));
    if (dtype == KVS_DTYPE_F16) {
        return _mm512_cvtph_ps(h);
    }
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Sums of 16 vectors at once, lane i = sum of x[i]: a shuffle-and-add tree (4 levels, 45 instructions for 16
 * dot products) instead of 16 separate horizontal reductions. */
KVS_INLINE void kvs_reduce16(const __m512* x, float* res) {
    __m512 a[16], c[8], e[4], f[2];
    /* the tree leaves sum(a[4t + j]) in lane 4j + t: feed it transposed so lane i gets x[i] */
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++) a[m] = x[(m % 4) * 4 + m / 4];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE));
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        e[k] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * k], c[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(c[2 * k], c[2 * k + 1], 0xDD));
    }
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        f[k] = _mm512_add_ps(_mm512_shuffle_ps(e[2 * k], e[2 * k + 1], 0x44),
                             _mm512_shuffle_ps(e[2 * k], e[2 * k + 1], 0xEE));
    }
    _mm512_storeu_ps(res, _mm512_add_ps(_mm512_shuffle_ps(f[0], f[1], 0x88), _mm512_shuffle_ps(f[0], f[1], 0xDD)));
}

/* kvs_exp_neg with 16 lanes (same range reduction and polynomial). */
KVS_INLINE __m512 kvs_exp_neg16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); /* second operand returned for NaN: keeps NaN */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n); /* p * 2^n */
}

#define KV_NAME(x) x##_avx512
#define KV_VEC __m512
#define KV_W 16
#define KV_MAXACC 16
#define KV_ZERO() _mm512_setzero_ps()
#define KV_LOADA(p) _mm512_load_ps(p)
#define KV_STOREA(p, v) _mm512_store_ps((p), (v))
#define KV_SET1(x) _mm512_set1_ps(x)
#define KV_BCAST(p) _mm512_set1_ps(*(p))
#define KV_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define KV_MUL(a, b) _mm512_mul_ps((a), (b))
#define KV_LOADROW(row, col, dtype, rb) kvs_load16((row), (col), (dtype), (rb))
#define KV_QCODES(qs, o, dtype)                                                                        \
    _mm512_cvtepi32_ps((dtype) == KVS_DTYPE_Q8_0 ? _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)((qs) + (o)))) \
                                                 : _mm512_sub_epi32(kvs_q4_codes16((qs), (o), 32), _mm512_set1_epi32(8)))
#define KV_QRAW(qs, o, dtype)                                                                          \
    _mm512_cvtepi32_ps((dtype) == KVS_DTYPE_Q8_0 ? _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)((qs) + (o)))) \
                                                 : kvs_q4_codes16((qs), (o), 32))
#define KV_HSUM(v) _mm512_reduce_add_ps(v)
#define KV_REDUCE_FULL(acc, res) kvs_reduce16((acc), (res))

#define KV_LOADU(p) _mm512_loadu_ps(p)
#define KV_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define KV_SUB(a, b) _mm512_sub_ps((a), (b))
#define KV_ADD(a, b) _mm512_add_ps((a), (b))
#define KV_MAX(a, b) _mm512_max_ps((a), (b))
#define KV_HMAX(v) _mm512_reduce_max_ps(v)
#define KV_EXP(x) kvs_exp_neg16(x)
#define KV_KEEP(v, n) _mm512_maskz_mov_ps((__mmask16)((1u << (n)) - 1u), (v))

#include "attn_decode_impl.h"
