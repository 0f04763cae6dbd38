/* Decode chunk kernels with 256-bit vectors (the x86-64-v3 baseline every supported machine has). */
#include <math.h>
#include <string.h>
#include "attn_decode.h"

#define KV_NAME(x) x##_avx2
#define KV_VEC __m256
#define KV_W 8
#define KV_MAXACC 8
#define KV_ZERO() _mm256_setzero_ps()
#define KV_LOADA(p) _mm256_load_ps(p)
#define KV_STOREA(p, v) _mm256_store_ps((p), (v))
#define KV_SET1(x) _mm256_set1_ps(x)
#define KV_BCAST(p) _mm256_broadcast_ss(p)
#define KV_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define KV_MUL(a, b) _mm256_mul_ps((a), (b))
#define KV_LOADROW(row, col, dtype, rb) kvs_load8((row), (col), (dtype), (rb))
#define KV_QCODES(qs, o, dtype)                                                                        \
    _mm256_cvtepi32_ps((dtype) == KVS_DTYPE_Q8_0 ? _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)((qs) + (o)))) \
                                                 : _mm256_sub_epi32(kvs_q4_codes8((qs), (o), 32), _mm256_set1_epi32(8)))
#define KV_QRAW(qs, o, dtype)                                                                          \
    _mm256_cvtepi32_ps((dtype) == KVS_DTYPE_Q8_0 ? _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)((qs) + (o)))) \
                                                 : kvs_q4_codes8((qs), (o), 32))
#define KV_HSUM(v) kvs_hsum(v)
#define KV_REDUCE_FULL(acc, res) _mm256_storeu_ps((res), kvs_hsum8(acc))
#define KV_WIDEACC 12
/* the first 8 sums as KV_REDUCE_FULL forms them, the last 4 by the same pairwise tree (so the same order per sum) */
#define KV_REDUCE_WIDE(acc, res)                                                                                \
    do {                                                                                                        \
        _mm256_storeu_ps((res), kvs_hsum8(acc));                                                                \
        __m256 w_ = _mm256_hadd_ps(_mm256_hadd_ps((acc)[8], (acc)[9]), _mm256_hadd_ps((acc)[10], (acc)[11]));   \
        _mm_storeu_ps((res) + 8, _mm_add_ps(_mm256_castps256_ps128(w_), _mm256_extractf128_ps(w_, 1)));         \
    } while (0)

#define KV_LOADU(p) _mm256_loadu_ps(p)
#define KV_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define KV_SUB(a, b) _mm256_sub_ps((a), (b))
#define KV_ADD(a, b) _mm256_add_ps((a), (b))
#define KV_MAX(a, b) _mm256_max_ps((a), (b))
#define KV_HMAX(v) kvs_hmax(v)
#define KV_EXP(x) kvs_exp_neg(x)
#define KV_KEEP(v, n) \
    _mm256_and_ps((v), _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))))

#include "attn_decode_impl.h"
