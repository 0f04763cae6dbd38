/* Decode scores of q8_0 / q4_0 K rows with a q8_0-quantised query and integer dot products (KVS_QUERY_Q8_0),
 * llama.cpp's vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0 scheme. Opt-in: the query's own rounding (at most half a step
 * of amax/127 per value of each 32-value group) enters the scores, so this is not the exact path's 1e-5 contract.
 *
 * The query of each head, already multiplied by the softmax scale, is quantised once per chunk: per 32-value
 * group j of head g, dq = amax/127 (f32, not rounded to f16), codes c = rint(x / dq) in [-127, 127], and the group's
 * code sum S (for q4_0's offset). A score is then sum_j (dq_gj * dk_rj) * I_grj with I the exact integer dot
 * product of the group's codes:
 *   q8_0: I = sum c * k: |k| with the sign of k moved onto c (_mm256_sign_epi8), _mm256_maddubs_epi16 (|k| <= 128,
 *         |c| <= 127: a pair sum is at most 32512, no saturation), _mm256_madd_epi16 with ones -> 8 int32 lanes;
 *   q4_0: I = sum c * (n - 8) = sum c * n - 8 S: the unsigned nibbles n go straight into maddubs (pair sums at most
 *         2 * 15 * 127), and 8 S is subtracted in the int32 lanes (S from each of the 8 lanes), exactly.
 * Per 32 values of a (head, row) pair that is 3-4 integer ops, one int->float conversion and one FMA with the
 * precomputed weight dq_gj * dk_rj (a broadcast load), against four f32 FMAs and the key's dequantisation on the
 * exact path. 256-bit code, used by the AVX-512 kernel set too (a 512-bit variant would need AVX512-BW/VNNI).
 * Head dims below 32 (one group of head_dim values per row, as the store quantises them) take a plain C loop of
 * the same arithmetic (iq_score_small). */
#include <math.h>
#include <string.h>
#include "attn_decode.h"

/* Where the parts of a quantised query live in its buffer (Dp bytes of codes per head). */
KVS_INLINE int8_t* iq_codes(void* qq) { return (int8_t*)qq; }
/* scale and code-sum slots per head: Dp / 32 groups of 32 values, or one group when head_dim < 32 */
KVS_INLINE int iq_slots(int Dp) { return Dp >= 32 ? Dp / 32 : 1; }
KVS_INLINE float* iq_scales(void* qq, int G, int Dp) { return (float*)((char*)qq + (size_t)G * Dp); }
KVS_INLINE int32_t* iq_sums(void* qq, int G, int Dp) {
    return (int32_t*)((char*)qq + (size_t)G * Dp + sizeof(float) * (size_t)G * iq_slots(Dp));
}

size_t kvs_iq_bytes(int G, int Dp) {
    return (size_t)G * Dp + 2 * sizeof(float) * (size_t)G * iq_slots(Dp);
}

/* Groups of gs = min(32, D) values (D a multiple of 32, or below 32: one group), scale and sum at [g * ng + j]. */
void kvs_iq_quantise(int G, int D, int Dp, const float* qs, void* qq) {
    int8_t* codes = iq_codes(qq);
    float* scales = iq_scales(qq, G, Dp);
    int32_t* sums = iq_sums(qq, G, Dp);
    const int gs = D < 32 ? D : 32;
    const int ng = D / gs;
    for (int g = 0; g < G; g++) {
        for (int j = 0; j < ng; j++) {
            const float* x = qs + (size_t)g * Dp + gs * j;
            int8_t* c = codes + (size_t)g * Dp + gs * j;
            float amax = 0.0f;
            for (int i = 0; i < gs; i++) amax = fmaxf(amax, fabsf(x[i]));
            float d = amax / 127.0f;
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            int32_t s = 0;
            for (int i = 0; i < gs; i++) {
                float rv = nearbyintf(x[i] * id); /* ties to even, as Java's Math.rint */
                int v = rv > 127.0f ? 127 : rv < -127.0f ? -127 : rv == rv ? (int)rv : 0; /* NaN (inf * 0): 0 */
                c[i] = (int8_t)v;
                s += v;
            }
            scales[g * ng + j] = d;
            sums[g * ng + j] = s;
        }
    }
}

#define IQ_MAXG 32 /* groups per row (head_dim <= 1024), as KV_QMAXG */
#define IQ_NG 4    /* heads per microkernel pass */

/* The 32 key codes of group j of a row as bytes: q8_0 signed, q4_0 unsigned nibbles in value order. */
KVS_INLINE __m256i iq_key(int dtype, const char* row, int j) {
    if (dtype == KVS_DTYPE_Q8_0) return _mm256_loadu_si256((const __m256i*)(row + (int64_t)j * 34 + 2));
    __m128i x = _mm_loadu_si128((const __m128i*)(row + (int64_t)j * 18 + 2));
    __m128i m = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
}

/* Scores of NR rows for NG heads: s[g][r] = sum_j w[j][g][r] * I_grj. */
KVS_INLINE void iq_kernel(int dtype, int NG, int NR, int nj, const char* krow, int64_t rb, const int8_t* qc,
                          int Dp, const int32_t* qsum, const float* w, float* s) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < NG * NR; i++) acc[i] = _mm256_setzero_ps();
    for (int j = 0; j < nj; j++) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) {
            __m256i k = iq_key(dtype, krow + r * rb, j);
            __m256i ak = dtype == KVS_DTYPE_Q8_0 ? _mm256_sign_epi8(k, k) : k;
#pragma GCC unroll 8
            for (int g = 0; g < NG; g++) {
                __m256i c = _mm256_loadu_si256((const __m256i*)(qc + (size_t)g * Dp + 32 * j));
                if (dtype == KVS_DTYPE_Q8_0) c = _mm256_sign_epi8(c, k);
                __m256i i32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ak, c), ones);
                if (dtype == KVS_DTYPE_Q4_0) i32 = _mm256_sub_epi32(i32, _mm256_set1_epi32(qsum[g * nj + j]));
                acc[g * NR + r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32),
                                                  _mm256_broadcast_ss(w + (j * IQ_NG + g) * KVS_TILE + r),
                                                  acc[g * NR + r]);
            }
        }
    }
    if (NG * NR == 8) {
        float res[8];
        _mm256_storeu_ps(res, kvs_hsum8(acc));
#pragma GCC unroll 8
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) s[g * KVS_TILE + r] = res[g * NR + r];
    } else {
#pragma GCC unroll 8
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) s[g * KVS_TILE + r] = kvs_hsum(acc[g * NR + r]);
    }
}

/* One pass of NG heads over the tile's t rows, two at a time (4 heads x 2 rows = 8 accumulators). */
KVS_INLINE void iq_pass(int dtype, int NG, int nj, const char* kp, int64_t rb, int t, const int8_t* qc, int Dp,
                        const int32_t* qsum, const float* w, float* s, const char* nk) {
    const char* pf = nk;
    int r = 0;
    for (; r + 2 <= t; r += 2) {
        if (pf != NULL) { /* the tile ahead, in address order, as many bytes as these rows take */
            for (int64_t o = 0; o < 2 * rb; o += 64) KVS_PREFETCH(pf + o);
            pf += 2 * rb;
        }
        iq_kernel(dtype, NG, 2, nj, kp + r * rb, rb, qc, Dp, qsum, w + r, s + r);
    }
    for (; r < t; r++) {
        if (pf != NULL) {
            for (int64_t o = 0; o < rb; o += 64) KVS_PREFETCH(pf + o);
            pf += rb;
        }
        iq_kernel(dtype, NG, 1, nj, kp + r * rb, rb, qc, Dp, qsum, w + r, s + r);
    }
}

KVS_INLINE void iq_score_tile(int dtype, int G, int D, int Dp, const char* kp, int64_t rb, int t, const void* qq,
                              float* s, const char* nk) {
    const int nj = D / 32;
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    const int8_t* codes = iq_codes((void*)qq);
    const float* qscale = iq_scales((void*)qq, G, Dp);
    const int32_t* qsum = iq_sums((void*)qq, G, Dp);
    /* the keys' f16 scales of the tile, dk[j][r] */
    float dk[IQ_MAXG * KVS_TILE] __attribute__((aligned(32)));
    for (int j = 0; j < nj; j++) {
        const char* g = kp + j * full;
        int r = 0;
        for (; r + 8 <= t; r += 8, g += 8 * rb) { /* 8 f16 scales gathered into one vector, converted together */
            uint16_t h[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) __builtin_memcpy(&h[i], g + i * rb, 2);
            _mm256_store_ps(dk + j * KVS_TILE + r, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)h)));
        }
        for (; r < t; r++, g += rb) dk[j * KVS_TILE + r] = kvs_qscale(g);
    }
    /* weights w[j][g][r] = dq_gj * dk_rj for the heads of one pass */
    float w[IQ_MAXG * IQ_NG * KVS_TILE] __attribute__((aligned(32)));
    for (int g0 = 0; g0 < G; g0 += IQ_NG) {
        const int ng = G - g0 >= IQ_NG ? IQ_NG : G - g0;
        for (int j = 0; j < nj; j++) {
            for (int g = 0; g < ng; g++) {
                __m256 dq = _mm256_set1_ps(qscale[(g0 + g) * nj + j]);
                float* wg = w + (j * IQ_NG + g) * KVS_TILE;
                const float* d = dk + j * KVS_TILE;
                int r = 0;
                for (; r + 8 <= t; r += 8) _mm256_store_ps(wg + r, _mm256_mul_ps(dq, _mm256_load_ps(d + r)));
                for (; r < t; r++) wg[r] = qscale[(g0 + g) * nj + j] * d[r];
            }
        }
        const int8_t* qc = codes + (size_t)g0 * Dp;
        const int32_t* qs = qsum + (size_t)g0 * nj;
        float* sg = s + g0 * KVS_TILE;
        const char* pf = g0 == 0 ? nk : NULL; /* prefetch during the first pass only */
        if (ng == 4) iq_pass(dtype, 4, nj, kp, rb, t, qc, Dp, qs, w, sg, pf);
        else if (ng == 3) iq_pass(dtype, 3, nj, kp, rb, t, qc, Dp, qs, w, sg, pf);
        else if (ng == 2) iq_pass(dtype, 2, nj, kp, rb, t, qc, Dp, qs, w, sg, pf);
        else iq_pass(dtype, 1, nj, kp, rb, t, qc, Dp, qs, w, sg, pf);
    }
}

/* Rows of one group of head_dim (< 32) values (stories260K's 8): the same arithmetic in plain C. q4_0: byte i
 * holds value i (low nibble) and value i + D/2 (high nibble). */
static void iq_score_small(int dtype, int G, int D, int Dp, const char* kp, int64_t rb, int t, const void* qq,
                           float* s) {
    const int8_t* codes = iq_codes((void*)qq);
    const float* qscale = iq_scales((void*)qq, G, Dp);
    for (int r = 0; r < t; r++) {
        const char* row = kp + r * rb;
        const uint8_t* qs = (const uint8_t*)row + 2;
        const float dk = kvs_qscale(row);
        int k[32];
        for (int c = 0; c < D; c++) {
            k[c] = dtype == KVS_DTYPE_Q8_0 ? (int8_t)qs[c] : (c < D / 2 ? (qs[c] & 15) : (qs[c - D / 2] >> 4)) - 8;
        }
        for (int g = 0; g < G; g++) {
            const int8_t* cg = codes + (size_t)g * Dp;
            int32_t dot = 0;
            for (int c = 0; c < D; c++) dot += cg[c] * k[c];
            s[g * KVS_TILE + r] = (qscale[g] * dk) * (float)dot;
        }
    }
}

void kvs_score_q8_0_iq(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qq, float* s,
                       const char* nk) {
    if (D % 32 == 0) iq_score_tile(KVS_DTYPE_Q8_0, G, D, Dp, kp, rb, t, qq, s, nk);
    else iq_score_small(KVS_DTYPE_Q8_0, G, D, Dp, kp, rb, t, qq, s);
}

void kvs_score_q4_0_iq(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qq, float* s,
                       const char* nk) {
    if (D % 32 == 0) iq_score_tile(KVS_DTYPE_Q4_0, G, D, Dp, kp, rb, t, qq, s, nk);
    else iq_score_small(KVS_DTYPE_Q4_0, G, D, Dp, kp, rb, t, qq, s);
}
