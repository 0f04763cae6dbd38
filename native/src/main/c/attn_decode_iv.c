/* Decode values of q8_0 / q4_0 V rows as integer dot products (KVS_VALUE_INT8 on the V dtype). Opt-in, like
 * KVS_QUERY_Q8_0: the softmax weights are rounded to 8-bit integers, so this is not the exact path's 1e-5 contract.
 *
 * For a tile of t rows, a query head g and a 32-value group j of the V rows, the weights w_r = p_gr * d_jr (the
 * softmax numerator times the row's group scale) are quantised once with the step sw = pmax_g * dmax_j / 127 (the
 * tile's largest p of head g times its largest |d| of group j: at least max_r |w_r| / 127), as
 * u_r = rint((p_gr / pmax_g) * (d_jr * 127 / dmax_j)) in [-127, 127]. The group's 32 output columns then take
 *     acc[g][32j + c] = acc * corr[g] + sw * I_c,   I_c = sum_r u_r * k_rc   (an exact int32 sum)
 * with k the stored codes (q4_0: nibble - 8, as sum_r u_r n_rc - 8 sum_r u_r). Each rounded weight is off by at most
 * min(|w_r|, sw / 2), so a column's unnormalised output moves by at most sum_r min(|w_r|, sw/2) |k_rc|.
 *
 * Layout: the codes of 4 rows are transposed so that each column's 4 codes are adjacent bytes (8 unpacks per 4 rows
 * x 32 values, shared by all the group's heads); _mm256_maddubs_epi16 with the 4 weights of the rows broadcast
 * (one 32-bit broadcast) gives per column two int16 sums of two rows, and _mm256_madd_epi16 with ones adds them into
 * int32 lanes:
 *   q8_0: maddubs(u, codes): u >= 0 because p >= 0 and q8_0 scales (amax / 127) are >= 0; |pair| <= 2 x 127 x 128,
 *         no saturation; one madd per 4 rows;
 *   q4_0: maddubs(nibbles, u): |pair| <= 2 x 15 x 127 = 3810, so up to 8 of them (32 rows) are added in the int16
 *         lanes before one madd widens them.
 * The transposed columns come out in the order {0-3, 16-19}, {4-7, 20-23}, ... (the unpacks work per 128-bit lane),
 * put back in order by four lane permutes per (head, group) before the one int->float conversion and FMA per 8
 * columns. Per 32 stored values (4 rows x 8 columns) of one head that is one maddubs, (q8_0) one madd and one add,
 * against 4 FMAs (+ the conversions) on the f32 path. 256-bit code, used by the AVX-512 kernel set too.
 *
 * Head dims below 32 (one group of head_dim values per row, stories260K's 8) take a plain C loop of the same
 * arithmetic (iv_small). */
#include <math.h>
#include <string.h>
#include "attn_decode.h"

#define IV_QUADS (KVS_TILE / 4)
#define KVS_MAXG_IV 64 /* query heads per KV head the stack buffers hold; larger groups take passes */

/* The 32 codes of group j of a row as bytes in value order: q8_0 signed, q4_0 unsigned nibbles. */
KVS_INLINE __m256i iv_codes(int dtype, const char* row, int j) {
    if (dtype == KVS_DTYPE_Q8_0) return _mm256_loadu_si256((const __m256i*)(row + (int64_t)j * 34 + 2));
    __m128i x = _mm_loadu_si128((const __m128i*)(row + (int64_t)j * 18 + 2));
    __m128i m = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
}

/* Largest lane of |v| over n floats (n a multiple of 8). */
KVS_INLINE float iv_amax(int n, const float* v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx = _mm256_setzero_ps();
    for (int r = 0; r < n; r += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_load_ps(v + r)));
    return kvs_hmax(mx);
}

/* Where the 4 weights of quad q (rows 4q .. 4q+3) sit after iv_pack: dword k of each 32-byte chunk holds quads
 * 8c + {0, 2, 4, 6, 1, 3, 5, 7}[k] (the packs work per 128-bit lane), so quad q is dword QPOS(q). */
#define IV_QPOS(q) (((q) & ~7) | (((q) & 1) << 2) | (((q) & 7) >> 1))

KVS_INLINE void iv_tile(int dtype, int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p,
                        float* acc, const float* corr, const char* nv) {
    const int nj = D / 32;
    const int nq = (t + 3) / 4;
    const int n8 = (t + 7) & ~7;   /* p is zero from t up to here (softmax_tile), and so is dv below */
    const int n32 = (t + 31) & ~31;
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i T[IV_QUADS * 4];                                  /* transposed codes of group j, 4 vectors per quad */
    float dn[KVS_TILE] __attribute__((aligned(32)));          /* the rows' scales of group j, times 127 / max */
    float pn[KVS_MAXG_IV * KVS_TILE] __attribute__((aligned(32))); /* p of head g over its tile maximum */
    float pmax[KVS_MAXG_IV];
    int8_t u[KVS_TILE] __attribute__((aligned(32)));
    /* Weight scale of (head g, group j): pmax_g * dmax_j / 127 >= max_r |p_gr d_jr|, so the codes
     * rint((p_gr / pmax_g) (d_jr 127 / dmax_j)) lie in [-127, 127]; one maximum per head and one per group instead
     * of one per (head, group), which measured 35% of this loop's time in serial hmax / divide chains. */
    for (int g = 0; g < G; g++) {
        const float* pg = p + g * KVS_TILE;
        float* o = pn + g * KVS_TILE;
        for (int i = 0; i < n8; i += 8) _mm256_store_ps(o + i, _mm256_loadu_ps(pg + i));
        for (int i = n8; i < n32; i++) o[i] = 0.0f;
        pmax[g] = iv_amax(n8, o);
        const __m256 inv = _mm256_set1_ps(pmax[g] != 0.0f ? 1.0f / pmax[g] : 0.0f);
        for (int i = 0; i < n8; i += 8) _mm256_store_ps(o + i, _mm256_mul_ps(_mm256_load_ps(o + i), inv));
    }
    const int64_t pf_total = (int64_t)t * rb; /* the next tile's bytes, prefetched spread over the groups */
    for (int j = 0; j < nj; j++) {
        if (nv != NULL) {
            for (int64_t o = pf_total * j / nj & ~(int64_t)63; o < pf_total * (j + 1) / nj; o += 64) KVS_PREFETCH(nv + o);
        }
        const char* g0 = vp + (int64_t)j * full;
        int r = 0;
        for (; r + 8 <= t; r += 8) { /* 8 f16 scales gathered into one vector, converted together */
            uint16_t h[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) __builtin_memcpy(&h[i], g0 + (r + i) * rb, 2);
            _mm256_store_ps(dn + r, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)h)));
        }
        for (; r < t; r++) dn[r] = kvs_qscale(g0 + r * rb);
        for (; r < n32; r++) dn[r] = 0.0f;
        const float dmax = iv_amax(n8, dn);
        const __m256 dinv = _mm256_set1_ps(dmax != 0.0f ? 127.0f / dmax : 0.0f);
        for (int i = 0; i < n8; i += 8) _mm256_store_ps(dn + i, _mm256_mul_ps(_mm256_load_ps(dn + i), dinv));
        for (int q = 0; q < nq; q++) { /* rows past t repeat row t - 1 (readable memory); their weight is 0 */
            const int r0 = 4 * q;
            const char* a = vp + (int64_t)r0 * rb;
            const char* b = vp + (int64_t)(r0 + 1 < t ? r0 + 1 : t - 1) * rb;
            const char* c = vp + (int64_t)(r0 + 2 < t ? r0 + 2 : t - 1) * rb;
            const char* d = vp + (int64_t)(r0 + 3 < t ? r0 + 3 : t - 1) * rb;
            __m256i A = iv_codes(dtype, a, j), B = iv_codes(dtype, b, j);
            __m256i C = iv_codes(dtype, c, j), E = iv_codes(dtype, d, j);
            __m256i ab0 = _mm256_unpacklo_epi8(A, B), ab1 = _mm256_unpackhi_epi8(A, B);
            __m256i cd0 = _mm256_unpacklo_epi8(C, E), cd1 = _mm256_unpackhi_epi8(C, E);
            T[4 * q + 0] = _mm256_unpacklo_epi16(ab0, cd0); /* columns 0-3 | 16-19, 4 rows each */
            T[4 * q + 1] = _mm256_unpackhi_epi16(ab0, cd0); /* 4-7 | 20-23 */
            T[4 * q + 2] = _mm256_unpacklo_epi16(ab1, cd1); /* 8-11 | 24-27 */
            T[4 * q + 3] = _mm256_unpackhi_epi16(ab1, cd1); /* 12-15 | 28-31 */
        }
        for (int g = 0; g < G; g++) {
            const float* pg = pn + g * KVS_TILE;
            __m256i usum = _mm256_setzero_si256();
            for (int i = 0; i < n32; i += 32) { /* 32 weights -> 32 bytes, quads in IV_QPOS order */
                __m256i w0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(pg + i), _mm256_load_ps(dn + i)));
                __m256i w1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(pg + i + 8), _mm256_load_ps(dn + i + 8)));
                __m256i w2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(pg + i + 16), _mm256_load_ps(dn + i + 16)));
                __m256i w3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(pg + i + 24), _mm256_load_ps(dn + i + 24)));
                if (dtype == KVS_DTYPE_Q4_0) usum = _mm256_add_epi32(usum, _mm256_add_epi32(_mm256_add_epi32(w0, w1),
                                                                                       _mm256_add_epi32(w2, w3)));
                _mm256_store_si256((__m256i*)(u + i), _mm256_packs_epi16(_mm256_packs_epi32(w0, w1),
                                                                          _mm256_packs_epi32(w2, w3)));
            }
            const float sw = pmax[g] * dmax / 127.0f;
            __m256i I[4];
            if (dtype == KVS_DTYPE_Q8_0) {
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                for (int q = 0; q < nq; q++) {
                    int32_t uq;
                    __builtin_memcpy(&uq, u + 4 * IV_QPOS(q), 4);
                    const __m256i b4 = _mm256_set1_epi32(uq);
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(b4, T[4 * q + 0]), ones));
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(b4, T[4 * q + 1]), ones));
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_maddubs_epi16(b4, T[4 * q + 2]), ones));
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_maddubs_epi16(b4, T[4 * q + 3]), ones));
                }
                I[0] = s0; I[1] = s1; I[2] = s2; I[3] = s3;
            } else {
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                for (int q0 = 0; q0 < nq; q0 += 8) { /* int16 sums of up to 8 quads: at most 8 x 3810 */
                    __m256i h0 = _mm256_setzero_si256(), h1 = h0, h2 = h0, h3 = h0;
                    const int q1 = q0 + 8 < nq ? q0 + 8 : nq;
                    for (int q = q0; q < q1; q++) {
                        int32_t uq;
                        __builtin_memcpy(&uq, u + 4 * IV_QPOS(q), 4);
                        const __m256i b4 = _mm256_set1_epi32(uq);
                        h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(T[4 * q + 0], b4));
                        h1 = _mm256_add_epi16(h1, _mm256_maddubs_epi16(T[4 * q + 1], b4));
                        h2 = _mm256_add_epi16(h2, _mm256_maddubs_epi16(T[4 * q + 2], b4));
                        h3 = _mm256_add_epi16(h3, _mm256_maddubs_epi16(T[4 * q + 3], b4));
                    }
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(h0, ones));
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(h1, ones));
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(h2, ones));
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(h3, ones));
                }
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(usum), _mm256_extracti128_si256(usum, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
                const __m256i off = _mm256_set1_epi32(8 * _mm_cvtsi128_si32(s4)); /* the codes' -8, exact */
                I[0] = _mm256_sub_epi32(s0, off); I[1] = _mm256_sub_epi32(s1, off);
                I[2] = _mm256_sub_epi32(s2, off); I[3] = _mm256_sub_epi32(s3, off);
            }
            /* back to column order: 0-7, 8-15, 16-23, 24-31 */
            __m256i o[4] = {_mm256_permute2x128_si256(I[0], I[1], 0x20), _mm256_permute2x128_si256(I[2], I[3], 0x20),
                            _mm256_permute2x128_si256(I[0], I[1], 0x31), _mm256_permute2x128_si256(I[2], I[3], 0x31)};
            float* a = acc + (int64_t)g * Dp + 32 * j;
            const __m256 cg = _mm256_set1_ps(corr[g]), sv = _mm256_set1_ps(sw);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256 x = _mm256_mul_ps(_mm256_load_ps(a + 8 * k), cg);
                _mm256_store_ps(a + 8 * k, _mm256_fmadd_ps(_mm256_cvtepi32_ps(o[k]), sv, x));
            }
        }
    }
}

/* Rows of one group of head_dim (< 32) values: the same arithmetic (and the same weight scale) in plain C. */
static void iv_small(int dtype, int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p,
                     float* acc, const float* corr) {
    float dn[KVS_TILE];
    int16_t k[KVS_TILE][32];
    float dmax = 0.0f;
    for (int r = 0; r < t; r++) {
        const char* row = vp + r * rb;
        dn[r] = kvs_qscale(row);
        dmax = fmaxf(dmax, fabsf(dn[r]));
        const uint8_t* qs = (const uint8_t*)row + 2;
        for (int c = 0; c < D; c++) {
            k[r][c] = dtype == KVS_DTYPE_Q8_0 ? (int8_t)qs[c]
                      : (int16_t)((c < D / 2 ? (qs[c] & 15) : (qs[c - D / 2] >> 4)) - 8);
        }
    }
    const float dinv = dmax != 0.0f ? 127.0f / dmax : 0.0f;
    for (int r = 0; r < t; r++) dn[r] *= dinv;
    for (int g = 0; g < G; g++) {
        const float* pg = p + g * KVS_TILE;
        float pmax = 0.0f;
        for (int r = 0; r < t; r++) pmax = fmaxf(pmax, pg[r]);
        const float pinv = pmax != 0.0f ? 1.0f / pmax : 0.0f;
        int32_t u[KVS_TILE];
        for (int r = 0; r < t; r++) u[r] = (int32_t)nearbyintf((pg[r] * pinv) * dn[r]); /* ties to even */
        const float sw = pmax * dmax / 127.0f;
        float* a = acc + (int64_t)g * Dp;
        for (int c = 0; c < D; c++) {
            int32_t s = 0;
            for (int r = 0; r < t; r++) s += u[r] * k[r][c];
            a[c] = a[c] * corr[g] + sw * (float)s;
        }
    }
}

/* Query heads in passes of at most KVS_MAXG_IV (the per-head buffers live on the stack). */
KVS_INLINE void iv_value(int dtype, int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p,
                         float* acc, const float* corr, const char* nv) {
    for (int g0 = 0; g0 < G; g0 += KVS_MAXG_IV) {
        const int n = G - g0 < KVS_MAXG_IV ? G - g0 : KVS_MAXG_IV;
        if (D % 32 == 0) {
            iv_tile(dtype, n, D, Dp, vp, rb, t, p + g0 * KVS_TILE, acc + (int64_t)g0 * Dp, corr + g0,
                    g0 == 0 ? nv : NULL);
        } else {
            iv_small(dtype, n, D, Dp, vp, rb, t, p + g0 * KVS_TILE, acc + (int64_t)g0 * Dp, corr + g0);
        }
    }
}

void kvs_value_q8_0_iv(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                       const float* corr, const char* nv) {
    iv_value(KVS_DTYPE_Q8_0, G, D, Dp, vp, rb, t, p, acc, corr, nv);
}

void kvs_value_q4_0_iv(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                       const float* corr, const char* nv) {
    iv_value(KVS_DTYPE_Q4_0, G, D, Dp, vp, rb, t, p, acc, corr, nv);
}
