/* Decode chunk kernel, written once for any vector width. The including file defines:
 *   KV_NAME(x)          function-name suffixing (x##_avx2, ...)
 *   KV_VEC, KV_W        vector type and its float lanes
 *   KV_MAXACC           accumulators a microkernel may keep in registers (8 with 16 ymm, 16 with 32 zmm)
 *   KV_WIDEACC          optional: accumulators the f32/f16/bf16 microkernels of 4 query heads keep instead
 *                       (12 with 16 ymm: the query chunk is an FMA memory operand, so 12 + 3 rows fit), with
 *   KV_REDUCE_WIDE(acc, res)      res[i] = sum of the lanes of acc[i], i < KV_WIDEACC
 *   KV_ZERO() KV_LOADA(p) KV_STOREA(p, v) KV_SET1(x) KV_BCAST(p) KV_FMA(a, b, c) KV_MUL(a, b)
 *   KV_LOADROW(row, col, dtype, rb)   KV_W elements of a stored row (rb bytes) from column col, as f32
 *                                     (quantised rows: dequantised in registers, see kvs_qgroup)
 *   KV_QCODES(qs, o, dtype)       KV_W codes of a 32-value q8_0/q4_0 group from value o on, as f32 (q4_0: code - 8)
 *   KV_QRAW(qs, o, dtype)         the same without the q4_0 offset (codes 0..15): the offset is folded elsewhere
 *   KV_HSUM(v)                    sum of the lanes
 *   KV_REDUCE_FULL(acc, res)      res[i] = sum of the lanes of acc[i], i < KV_MAXACC
 *   KV_LOADU(p) KV_STOREU(p, v) KV_SUB(a, b) KV_ADD(a, b) KV_MAX(a, b) KV_HMAX(v)
 *   KV_EXP(x)                     e^x for x <= 0 (see kvs_exp_neg)
 *   KV_KEEP(v, n)                 v with lanes >= n zeroed
 * and includes this file once. dtype is a compile-time constant in every instantiation below.
 *
 * Shapes. Scores: NG query heads x NR rows per microkernel (NG*NR = KV_MAXACC): each K chunk load feeds NG FMAs
 * and each q chunk NR, and KV_MAXACC dot products are reduced together. Values: NG heads x NC chunks, so each V
 * chunk feeds NG FMAs and each broadcast probability NC. Query heads beyond what fits are processed in further
 * passes over the same tile, which is then in L1.
 *
 * Why 12 accumulators for 4 heads (KV_WIDEACC). With 8, each FMA pipe has exactly as many independent chains as its
 * latency needs (4 cycles x 2 pipes on the machine measured), so any load or conversion that arrives late stalls
 * a pipe; 3 rows (scores) or 3 chunks (values) per step give slack. Each accumulator still sums its lanes in the
 * same order, so the results are bit for bit those of the 8-accumulator shapes (native/bench/decode_ab.c,
 * docs/benchmarks.md, section "dec7"). */

/* Room for the accumulators (and row vectors) of any shape below. */
#if defined(KV_WIDEACC) && KV_WIDEACC > KV_MAXACC
#define KV_ACCS KV_WIDEACC
#else
#define KV_ACCS KV_MAXACC
#endif

/* res[i] = the lanes of acc[i] summed, i < n: all KV_MAXACC together when the microkernel filled them. */
KVS_INLINE void KV_NAME(reduce_acc)(int n, const KV_VEC* acc, float* res) {
    if (n == KV_MAXACC) {
        KV_REDUCE_FULL(acc, res);
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < n; i++) res[i] = KV_HSUM(acc[i]);
    }
}

KVS_INLINE void KV_NAME(score_kernel)(int dtype, int NG, int NR, int D, const char* krow, int64_t rb,
                                      const float* q, int Dp, float* s, const char** pk) {
    const int esz = dtype == KVS_DTYPE_F32 ? 4 : 2;
    const char* cur = pk != NULL ? *pk : NULL;
    KV_VEC acc[KV_ACCS];
#pragma GCC unroll 16
    for (int i = 0; i < NG * NR; i++) acc[i] = KV_ZERO();
    int c = 0;
    if (kvs_quantised(dtype) && rb >= (dtype == KVS_DTYPE_Q8_0 ? 34 : 18)) {
        /* 32-value groups (D a multiple of 32): each row's group address and scale once per group, not once per
         * vector; the codes of each vector are widened and scaled in registers */
        const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
        for (; c < D; c += 32) {
            const uint8_t* qs[KV_MAXACC];
            KV_VEC dv[KV_MAXACC];
#pragma GCC unroll 16
            for (int r = 0; r < NR; r++) {
                const char* grp = krow + r * rb + (int64_t)(c >> 5) * full;
                qs[r] = (const uint8_t*)grp + 2;
                dv[r] = KV_SET1(kvs_qscale(grp));
            }
            if (cur != NULL) {
                int64_t b0 = (int64_t)(c >> 5) * full, b1 = b0 + full;
                if (((b0 + 63) >> 6) != ((b1 + 63) >> 6)) {
#pragma GCC unroll 16
                    for (int r = 0; r < NR; r++) KVS_PREFETCH(cur + r * 64);
                }
                cur += NR * full;
            }
#pragma GCC unroll 4
            for (int o = 0; o < 32; o += KV_W) {
                KV_VEC kv[KV_ACCS];
#pragma GCC unroll 16
                for (int r = 0; r < NR; r++) kv[r] = KV_MUL(KV_QCODES(qs[r], o, dtype), dv[r]);
#pragma GCC unroll 16
                for (int g = 0; g < NG; g++) {
                    KV_VEC qv = KV_LOADA(q + g * Dp + c + o);
#pragma GCC unroll 16
                    for (int r = 0; r < NR; r++) acc[g * NR + r] = KV_FMA(qv, kv[r], acc[g * NR + r]);
                }
            }
        }
    }
    for (; c + KV_W <= D; c += KV_W) {
        KV_VEC kv[KV_ACCS];
#pragma GCC unroll 16
        for (int r = 0; r < NR; r++) kv[r] = KV_LOADROW(krow + r * rb, c, dtype, rb);
        if (cur != NULL) { /* prefetch the tile ahead in address order, as many bytes as consumed here */
            if (kvs_quantised(dtype)) { /* fewer bytes per value: NR lines whenever a row crosses a line start */
                int64_t b0 = kvs_span_bytes(dtype, rb, c), b1 = kvs_span_bytes(dtype, rb, c + KV_W);
                if (((b0 + 63) >> 6) != ((b1 + 63) >> 6)) {
#pragma GCC unroll 16
                    for (int r = 0; r < NR; r++) KVS_PREFETCH(cur + r * 64);
                }
                cur += NR * (b1 - b0);
            } else {
                if (((c * esz) & 63) == 0) {
#pragma GCC unroll 16
                    for (int r = 0; r < NR; r++) KVS_PREFETCH(cur + r * 64);
                }
                cur += NR * KV_W * esz;
            }
        }
#pragma GCC unroll 16
        for (int g = 0; g < NG; g++) {
            KV_VEC qv = KV_LOADA(q + g * Dp + c);
#pragma GCC unroll 16
            for (int r = 0; r < NR; r++) acc[g * NR + r] = KV_FMA(qv, kv[r], acc[g * NR + r]);
        }
    }
    if (pk != NULL) *pk = cur;
    float res[KV_ACCS];
#ifdef KV_WIDEACC
    if (NG * NR == KV_WIDEACC) {
        KV_REDUCE_WIDE(acc, res);
    } else
#endif
    {
        KV_NAME(reduce_acc)(NG * NR, acc, res);
    }
    for (; c < D; c++) { /* head_dim not a multiple of the vector width */
        for (int r = 0; r < NR; r++) {
            float k = kvs_load1(krow + r * rb, c, dtype, rb);
            for (int g = 0; g < NG; g++) res[g * NR + r] += q[g * Dp + c] * k;
        }
    }
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
#pragma GCC unroll 16
        for (int r = 0; r < NR; r++) s[g * KVS_TILE + r] = res[g * NR + r];
    }
}

/* Rows [r, t) of one pass of NG heads, NR rows at a time, then the remainder with smaller NR. */
#define KV_SCORE_ROWS(NG, NR)                                                                         \
    for (; r + (NR) <= t; r += (NR)) {                                                                \
        KV_NAME(score_kernel)(dtype, NG, NR, D, kp + r * rb, rb, q, Dp, sg + r, pk);                 \
    }

KVS_INLINE void KV_NAME(score_pass)(int dtype, int NG, int D, int Dp, const char* kp, int64_t rb, int t,
                                    const float* q, float* sg, const char* nk) {
    const char* cursor = nk;
    const char** pk = nk != NULL ? &cursor : NULL;
    int r = 0;
#ifdef KV_WIDEACC
    if (!kvs_quantised(dtype) && NG == 4) KV_SCORE_ROWS(4, KV_WIDEACC / 4)
#endif
    if (KV_MAXACC / NG >= 16) KV_SCORE_ROWS(NG, 16)
    if (KV_MAXACC / NG >= 8) KV_SCORE_ROWS(NG, 8)
    if (KV_MAXACC / NG >= 4) KV_SCORE_ROWS(NG, 4)
    if (KV_MAXACC / NG >= 2) KV_SCORE_ROWS(NG, 2)
    KV_SCORE_ROWS(NG, 1)
}
#undef KV_SCORE_ROWS


/* ---- quantised rows of 32-value groups (head_dim a multiple of 32, up to KV_QMAXG groups) ----
 * The tile's f16 group scales are converted once (qscales). Scores: a row's group is dequantised in registers,
 * codes * d (q8_0) or codes * d - 8d in one FMA (q4_0), and feeds the NG heads' FMAs. Values: the weights
 * p[g][r] * d[r] of a group are formed once per tile, vectorised over rows (qweights); the inner loop converts the
 * codes (q4_0: minus 8, exact) and FMAs them with the weights. Per KV_W values a row costs one widening load
 * (+ a nibble mask/shift for q4_0), one int->float conversion, the scale multiply in scores (the q4_0 subtraction
 * in values) and the NG FMAs every dtype needs. */
#define KV_QMAXG 32

/* Whether rows of this dtype take the group-wise loops: 32-value groups (rb says so), at most KV_QMAXG of them. */
KVS_INLINE int KV_NAME(qfast)(int dtype, int D, int64_t rb) {
    return rb >= (dtype == KVS_DTYPE_Q8_0 ? 34 : 18) && D % 32 == 0 && D / 32 <= KV_QMAXG;
}

/* d of group j of rows [0, t) -> dsc[j * KVS_TILE + r], zeros up to the next multiple of KV_W rows */
KVS_INLINE void KV_NAME(qscales)(int dtype, int ng, const char* base, int64_t rb, int t, float* dsc) {
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    const int tp = (t + KV_W - 1) / KV_W * KV_W;
    for (int j = 0; j < ng; j++) {
        float* d = dsc + j * KVS_TILE;
        const uint8_t* g = (const uint8_t*)base + j * full;
        int r = 0;
        for (; r + 8 <= t; r += 8, g += 8 * rb) { /* 8 f16 scales gathered into one vector, converted together */
            uint16_t h[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) __builtin_memcpy(&h[i], g + i * rb, 2);
            _mm256_storeu_ps(d + r, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)h)));
        }
        for (; r < t; r++, g += rb) d[r] = kvs_qscale((const char*)g);
        for (; r < tp; r++) d[r] = 0.0f;
    }
}

/* Scores of NR rows for NG heads (NG * NR <= KV_MAXACC). Each row's group is dequantised once in registers and
 * feeds NG FMAs: codes * d (q8_0) or codes * d - 8 d in one FMA (q4_0), d from dsc[j * KVS_TILE + r]. Applying d
 * to the (head, row) dot products instead costs as much (NG = 4 heads x 4 vectors per group) plus a horizontal
 * reduction per group, which measured slower. */
KVS_INLINE void KV_NAME(qscore_kernel)(int dtype, int NG, int NR, int D, const char* krow, int64_t rb,
                                       const float* q, int Dp, const float* dsc, float* s, const char** pk) {
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    const char* cur = pk != NULL ? *pk : NULL;
    KV_VEC acc[KV_MAXACC];
#pragma GCC unroll 16
    for (int i = 0; i < NG * NR; i++) acc[i] = KV_ZERO();
    for (int c = 0, j = 0; c < D; c += 32, j++) {
        const uint8_t* qs[KV_MAXACC];
        KV_VEC dv[KV_MAXACC], mv[KV_MAXACC];
#pragma GCC unroll 16
        for (int r = 0; r < NR; r++) {
            qs[r] = (const uint8_t*)krow + r * rb + (int64_t)j * full + 2;
            dv[r] = KV_BCAST(dsc + j * KVS_TILE + r);
            if (dtype == KVS_DTYPE_Q4_0) mv[r] = KV_MUL(dv[r], KV_SET1(-8.0f));
        }
        if (cur != NULL) { /* as many bytes ahead as this group consumes: NR lines when a row crosses a line */
            int64_t b0 = (int64_t)j * full, b1 = b0 + full;
            if (((b0 + 63) >> 6) != ((b1 + 63) >> 6)) {
#pragma GCC unroll 16
                for (int r = 0; r < NR; r++) KVS_PREFETCH(cur + r * 64);
            }
            cur += NR * full;
        }
#pragma GCC unroll 4
        for (int o = 0; o < 32; o += KV_W) {
            KV_VEC kv[KV_MAXACC];
#pragma GCC unroll 16
            for (int r = 0; r < NR; r++) {
                kv[r] = dtype == KVS_DTYPE_Q8_0 ? KV_MUL(KV_QRAW(qs[r], o, dtype), dv[r])
                                                : KV_FMA(KV_QRAW(qs[r], o, dtype), dv[r], mv[r]);
            }
#pragma GCC unroll 16
            for (int g = 0; g < NG; g++) {
                KV_VEC qv = KV_LOADA(q + g * Dp + c + o);
#pragma GCC unroll 16
                for (int r = 0; r < NR; r++) acc[g * NR + r] = KV_FMA(qv, kv[r], acc[g * NR + r]);
            }
        }
    }
    if (pk != NULL) *pk = cur;
    float res[KV_MAXACC];
    KV_NAME(reduce_acc)(NG * NR, acc, res);
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
#pragma GCC unroll 16
        for (int r = 0; r < NR; r++) s[g * KVS_TILE + r] = res[g * NR + r];
    }
}

/* One pass of NG heads over the tile's t rows (quantised, 32-value groups): KV_MAXACC / NG rows at a time. */
KVS_INLINE void KV_NAME(qscore_pass)(int dtype, int NG, int D, int Dp, const char* kp, int64_t rb, int t,
                                     const float* q, float* sg, const char* nk, const float* dsc) {
    const int NR = KV_MAXACC / NG;
    const char* cursor = nk;
    const char** pk = nk != NULL ? &cursor : NULL;
    int r = 0;
    for (; r + NR <= t; r += NR) KV_NAME(qscore_kernel)(dtype, NG, NR, D, kp + r * rb, rb, q, Dp, dsc + r, sg + r, pk);
    for (; r < t; r++) KV_NAME(qscore_kernel)(dtype, NG, 1, D, kp + r * rb, rb, q, Dp, dsc + r, sg + r, pk);
}

/* Values, NG heads x NC vectors of columns from c (c a multiple of NC * KV_W, so the chunk lies in one group or
 * starts on a group boundary): acc = acc * corr + sum_r p[g][r] d[r] (codes[r] (- 8 for q4_0)),
 * with the weights w[(jj * NG + g) * KVS_TILE + r] = p[g][r] d_jj[r] of the chunk's groups jj = 0, 1, ... */
KVS_INLINE void KV_NAME(qvalue_kernel)(int dtype, int NG, int NC, const char* vp, int64_t rb, int t, int c, int c0,
                                       const float* w, float* acc, int Dp, const float* corr,
                                       const char** pv) {
    const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
    KV_VEC a[KV_MAXACC];
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
        KV_VEC cg = KV_SET1(corr[g]);
#pragma GCC unroll 16
        for (int k = 0; k < NC; k++) a[g * NC + k] = KV_MUL(KV_LOADA(acc + (int64_t)g * Dp + c + KV_W * k), cg);
    }
    const int64_t pspan = kvs_span_bytes(dtype, rb, (int64_t)NC * KV_W);
    const char* cur = pv != NULL ? *pv : NULL;
    const char* base = vp + (int64_t)(c >> 5) * full + 2; /* c0 = c & 31, a constant here: see KV_QVALUE_CALL */
    const KV_VEC eight = KV_SET1(8.0f);
    for (int r = 0; r < t; r++) {
        const uint8_t* row = (const uint8_t*)base + r * rb;
        if (cur != NULL) {
            for (int64_t o = 0; o < pspan; o += 64) KVS_PREFETCH(cur + o);
            cur += pspan;
        }
        KV_VEC v[KV_MAXACC];
#pragma GCC unroll 16
        for (int k = 0; k < NC; k++) {
            const int col = c0 + KV_W * k;
            v[k] = KV_QRAW(row + (int64_t)(col >> 5) * full, col & 31, dtype);
            /* q4_0: code - 8, exact in float. Folding the 8 into one subtraction of 8 sum(p d) per tile instead
             * measured output errors of 7e-5 of max |out| at 32k rows (sum p d code and 8 sum p d cancel) */
            if (dtype == KVS_DTYPE_Q4_0) v[k] = KV_SUB(v[k], eight);
        }
#pragma GCC unroll 16
        for (int g = 0; g < NG; g++) {
            KV_VEC pb = KV_BCAST(w + g * KVS_TILE + r);
#pragma GCC unroll 16
            for (int k = 0; k < NC; k++) {
                const int jj = (c0 + KV_W * k) >> 5;
                if (k > 0 && jj != ((c0 + KV_W * (k - 1)) >> 5)) pb = KV_BCAST(w + (jj * NG + g) * KVS_TILE + r);
                a[g * NC + k] = KV_FMA(pb, v[k], a[g * NC + k]);
            }
        }
    }
    if (pv != NULL) *pv = cur;
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
#pragma GCC unroll 16
        for (int k = 0; k < NC; k++) {
            KV_STOREA(acc + (int64_t)g * Dp + c + KV_W * k, a[g * NC + k]);
        }
    }
}

/* The weights of groups [j0, j1) for NG heads: w[((j - j0) * NG + g) * KVS_TILE + r] = p[g][r] * d_j[r] for r
 * up to t rounded up to KV_W (p and the scales are zero there). */
KVS_INLINE void KV_NAME(qweights)(int NG, int j0, int j1, int t, const float* p, const float* dsc, float* w) {
    for (int j = j0; j < j1; j++) {
        const float* d = dsc + j * KVS_TILE;
        for (int g = 0; g < NG; g++) {
            float* wg = w + ((j - j0) * NG + g) * KVS_TILE;
            for (int r = 0; r < t; r += KV_W) KV_STOREU(wg + r, KV_MUL(KV_LOADU(p + g * KVS_TILE + r), KV_LOADU(d + r)));
        }
    }
}

/* the kernel with c & 31 a compile-time constant, so which nibbles and group each vector takes folds away */
#define KV_QVALUE_CALL(NG, NC)                                                                        \
    switch (c & 31) {                                                                                 \
    case 0: KV_NAME(qvalue_kernel)(dtype, NG, NC, vp, rb, t, c, 0, w, acc, Dp, corr, pv); break;  \
    case 8: if (KV_W == 8) KV_NAME(qvalue_kernel)(dtype, NG, NC, vp, rb, t, c, 8, w, acc, Dp, corr, pv); break; \
    case 16: KV_NAME(qvalue_kernel)(dtype, NG, NC, vp, rb, t, c, 16, w, acc, Dp, corr, pv); break; \
    default: if (KV_W == 8) KV_NAME(qvalue_kernel)(dtype, NG, NC, vp, rb, t, c, 24, w, acc, Dp, corr, pv); break; \
    }
#define KV_QVALUE_COLS(NG, NC)                                                                        \
    for (; c + (NC) * KV_W <= D; c += (NC) * KV_W) {                                                 \
        int j0 = c >> 5, j1 = (c + (NC) * KV_W + 31) >> 5;                                           \
        if (j0 != wj0 || j1 != wj1) {                                                                 \
            KV_NAME(qweights)(NG, j0, j1, t, p, dsc, w);                                      \
            wj0 = j0;                                                                                 \
            wj1 = j1;                                                                                 \
        }                                                                                             \
        KV_QVALUE_CALL(NG, NC)                                                                        \
    }

KVS_INLINE void KV_NAME(qvalue_pass)(int dtype, int NG, int D, const char* vp, int64_t rb, int t, const float* p,
                                     float* acc, int Dp, const float* corr, const char** pv, const float* dsc) {
    /* weights of the groups the current chunk spans: at most max(NG, KV_MAXACC * KV_W / 32) (head, group) pairs */
    float w[(KV_MAXACC > KV_MAXACC * KV_W / 32 ? KV_MAXACC : KV_MAXACC * KV_W / 32) * KVS_TILE]
        __attribute__((aligned(64)));
    int wj0 = -1, wj1 = -1, c = 0;
    if (KV_MAXACC / NG >= 16) KV_QVALUE_COLS(NG, 16)
    if (KV_MAXACC / NG >= 8) KV_QVALUE_COLS(NG, 8)
    if (KV_MAXACC / NG >= 4) KV_QVALUE_COLS(NG, 4)
    if (KV_MAXACC / NG >= 2) KV_QVALUE_COLS(NG, 2)
    KV_QVALUE_COLS(NG, 1)
}
#undef KV_QVALUE_COLS
#undef KV_QVALUE_CALL

/* s[g][r] = <q_g, k_r> for the tile's t rows and all G query heads (q already scaled). */
KVS_INLINE void KV_NAME(score_tile)(int dtype, int G, int D, int Dp, const char* kp, int64_t rb, int t,
                                    const float* qs, float* s, const char* nk) {
    int g0 = 0;
    if (kvs_quantised(dtype) && KV_NAME(qfast)(dtype, D, rb)) {
        float dsc[KV_QMAXG * KVS_TILE] __attribute__((aligned(64)));
        KV_NAME(qscales)(dtype, D / 32, kp, rb, t, dsc);
        while (g0 < G) {
            int rem = G - g0, ng = rem >= 16 && KV_MAXACC >= 16 ? 16 : rem >= 8 ? 8 : rem >= 4 ? 4 : rem >= 2 ? 2 : 1;
            const float* q = qs + (int64_t)g0 * Dp;
            float* sg = s + g0 * KVS_TILE;
            const char* pk = g0 == 0 ? nk : NULL;
            if (ng == 16) KV_NAME(qscore_pass)(dtype, KV_MAXACC >= 16 ? 16 : 1, D, Dp, kp, rb, t, q, sg, pk, dsc);
            else if (ng == 8) KV_NAME(qscore_pass)(dtype, 8, D, Dp, kp, rb, t, q, sg, pk, dsc);
            else if (ng == 4) KV_NAME(qscore_pass)(dtype, 4, D, Dp, kp, rb, t, q, sg, pk, dsc);
            else if (ng == 2) KV_NAME(qscore_pass)(dtype, 2, D, Dp, kp, rb, t, q, sg, pk, dsc);
            else KV_NAME(qscore_pass)(dtype, 1, D, Dp, kp, rb, t, q, sg, pk, dsc);
            g0 += ng;
        }
        return;
    }
    while (g0 < G) {
        int rem = G - g0;
        const float* q = qs + (int64_t)g0 * Dp;
        float* sg = s + g0 * KVS_TILE;
        const char* pk = g0 == 0 ? nk : NULL; /* prefetch during the first pass over the tile only */
        if (rem >= 8) {
            KV_NAME(score_pass)(dtype, 8, D, Dp, kp, rb, t, q, sg, pk);
            g0 += 8;
        } else if (rem >= 4) {
            KV_NAME(score_pass)(dtype, 4, D, Dp, kp, rb, t, q, sg, pk);
            g0 += 4;
        } else if (rem >= 2) {
            KV_NAME(score_pass)(dtype, 2, D, Dp, kp, rb, t, q, sg, pk);
            g0 += 2;
        } else {
            KV_NAME(score_pass)(dtype, 1, D, Dp, kp, rb, t, q, sg, pk);
            g0 += 1;
        }
    }
}

/* acc[g][c .. c + NC*W) = acc * corr[g] + sum_r p[g][r] v[r][c ..] for NG heads. */
KVS_INLINE void KV_NAME(value_kernel)(int dtype, int NG, int NC, const char* vp, int64_t rb, int t, int c,
                                      const float* p, float* acc, int Dp, const float* corr, const char** pv) {
    KV_VEC a[KV_ACCS];
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
        KV_VEC cg = KV_SET1(corr[g]);
#pragma GCC unroll 16
        for (int k = 0; k < NC; k++) a[g * NC + k] = KV_MUL(KV_LOADA(acc + (int64_t)g * Dp + c + KV_W * k), cg);
    }
    /* prefetch the tile ahead in address order, as many bytes per row as this pass consumes: spread evenly
     * over all column passes, and a sequential stream the hardware prefetchers can follow */
    const int64_t pspan = kvs_span_bytes(dtype, rb, (int64_t)NC * KV_W);
    const char* cur = pv != NULL ? *pv : NULL;
    for (int r = 0; r < t; r++) {
        const char* row = vp + r * rb;
        if (cur != NULL) {
            for (int64_t o = 0; o < pspan; o += 64) KVS_PREFETCH(cur + o);
            cur += pspan;
        }
        KV_VEC v[KV_ACCS];
        if (kvs_quantised(dtype) && rb >= (dtype == KVS_DTYPE_Q8_0 ? 34 : 18)) {
            /* 32-value groups: a chunk of columns either lies in one group or starts on a group boundary, so a
             * group's address and scale are taken once, where it starts (or at the chunk's first column) */
            const int64_t full = dtype == KVS_DTYPE_Q8_0 ? 34 : 18;
            const uint8_t* qs = NULL;
            KV_VEC dv = KV_ZERO();
#pragma GCC unroll 16
            for (int k = 0; k < NC; k++) {
                const int col = c + KV_W * k;
                if (k == 0 || ((KV_W * k) & 31) == 0) {
                    const char* grp = row + (int64_t)(col >> 5) * full;
                    qs = (const uint8_t*)grp + 2;
                    dv = KV_SET1(kvs_qscale(grp));
                }
                v[k] = KV_MUL(KV_QCODES(qs, col & 31, dtype), dv);
            }
        } else {
#pragma GCC unroll 16
            for (int k = 0; k < NC; k++) v[k] = KV_LOADROW(row, c + KV_W * k, dtype, rb);
        }
#pragma GCC unroll 16
        for (int g = 0; g < NG; g++) {
            KV_VEC pb = KV_BCAST(p + g * KVS_TILE + r);
#pragma GCC unroll 16
            for (int k = 0; k < NC; k++) a[g * NC + k] = KV_FMA(pb, v[k], a[g * NC + k]);
        }
    }
    if (pv != NULL) *pv = cur;
#pragma GCC unroll 16
    for (int g = 0; g < NG; g++) {
#pragma GCC unroll 16
        for (int k = 0; k < NC; k++) KV_STOREA(acc + (int64_t)g * Dp + c + KV_W * k, a[g * NC + k]);
    }
}

#define KV_VALUE_COLS(NG, NC)                                                                         \
    for (; c + (NC) * KV_W <= Dv; c += (NC) * KV_W) {                                                \
        KV_NAME(value_kernel)(dtype, NG, NC, vp, rb, t, c, p, acc, Dp, corr, pv);                     \
    }

KVS_INLINE void KV_NAME(value_pass)(int dtype, int NG, int D, const char* vp, int64_t rb, int t, const float* p,
                                    float* acc, int Dp, const float* corr, const char** pv) {
    const int Dv = D - D % KV_W;
    int c = 0;
#ifdef KV_WIDEACC
    if (!kvs_quantised(dtype) && NG == 4) KV_VALUE_COLS(4, KV_WIDEACC / 4)
#endif
    if (KV_MAXACC / NG >= 16) KV_VALUE_COLS(NG, 16)
    if (KV_MAXACC / NG >= 8) KV_VALUE_COLS(NG, 8)
    if (KV_MAXACC / NG >= 4) KV_VALUE_COLS(NG, 4)
    if (KV_MAXACC / NG >= 2) KV_VALUE_COLS(NG, 2)
    KV_VALUE_COLS(NG, 1)
    for (int d = Dv; d < D; d++) { /* head_dim not a multiple of the vector width */
        for (int g = 0; g < NG; g++) {
            float a = acc[(int64_t)g * Dp + d] * corr[g];
            for (int r = 0; r < t; r++) a += p[g * KVS_TILE + r] * kvs_load1(vp + r * rb, d, dtype, rb);
            acc[(int64_t)g * Dp + d] = a;
        }
    }
}
#undef KV_VALUE_COLS

KVS_INLINE void KV_NAME(value_tile)(int dtype, int G, int D, int Dp, const char* vp, int64_t rb, int t,
                                    const float* p, float* acc, const float* corr, const char* nv) {
    int g0 = 0;
    if (kvs_quantised(dtype) && KV_NAME(qfast)(dtype, D, rb)) {
        float dsc[KV_QMAXG * KVS_TILE] __attribute__((aligned(64)));
        KV_NAME(qscales)(dtype, D / 32, vp, rb, t, dsc);
        while (g0 < G) {
            int rem = G - g0, ng = rem >= 16 && KV_MAXACC >= 16 ? 16 : rem >= 8 ? 8 : rem >= 4 ? 4 : rem >= 2 ? 2 : 1;
            float* a = acc + (int64_t)g0 * Dp;
            const float* pg = p + g0 * KVS_TILE;
            const float* cg = corr + g0;
            const char* cursor = nv;
            const char** pv = g0 == 0 && nv != NULL ? &cursor : NULL;
            if (ng == 16) KV_NAME(qvalue_pass)(dtype, KV_MAXACC >= 16 ? 16 : 1, D, vp, rb, t, pg, a, Dp, cg, pv, dsc);
            else if (ng == 8) KV_NAME(qvalue_pass)(dtype, 8, D, vp, rb, t, pg, a, Dp, cg, pv, dsc);
            else if (ng == 4) KV_NAME(qvalue_pass)(dtype, 4, D, vp, rb, t, pg, a, Dp, cg, pv, dsc);
            else if (ng == 2) KV_NAME(qvalue_pass)(dtype, 2, D, vp, rb, t, pg, a, Dp, cg, pv, dsc);
            else KV_NAME(qvalue_pass)(dtype, 1, D, vp, rb, t, pg, a, Dp, cg, pv, dsc);
            g0 += ng;
        }
        return;
    }
    while (g0 < G) {
        int rem = G - g0;
        float* a = acc + (int64_t)g0 * Dp;
        const float* pg = p + g0 * KVS_TILE;
        const float* cg = corr + g0;
        const char* cursor = nv;
        const char** pv = g0 == 0 && nv != NULL ? &cursor : NULL; /* prefetch during the first pass only */
        if (rem >= 8) {
            KV_NAME(value_pass)(dtype, 8, D, vp, rb, t, pg, a, Dp, cg, pv);
            g0 += 8;
        } else if (rem >= 4) {
            KV_NAME(value_pass)(dtype, 4, D, vp, rb, t, pg, a, Dp, cg, pv);
            g0 += 4;
        } else if (rem >= 2) {
            KV_NAME(value_pass)(dtype, 2, D, vp, rb, t, pg, a, Dp, cg, pv);
            g0 += 2;
        } else {
            KV_NAME(value_pass)(dtype, 1, D, vp, rb, t, pg, a, Dp, cg, pv);
            g0 += 1;
        }
    }
}

/* Online softmax step over a tile of t scores per query head (rows KVS_TILE apart): p = exp(s - m_new) in
 * place (lanes past t zeroed up to the next vector boundary), m and l updated, corr = exp(m_old - m_new), the
 * factor the running output is multiplied by. */
KVS_INLINE void KV_NAME(softmax_tile)(int G, int t, float* s, float* m, float* l, float* corr) {
    for (int g = 0; g < G; g++) {
        float* sg = s + g * KVS_TILE;
        KV_VEC mx = KV_SET1(-INFINITY);
        int i = 0;
        for (; i + KV_W <= t; i += KV_W) mx = KV_MAX(mx, KV_LOADU(sg + i));
        float mt = KV_HMAX(mx);
        for (; i < t; i++) mt = sg[i] > mt ? sg[i] : mt;
        float mn = m[g] > mt ? m[g] : mt;
        corr[g] = m[g] == -INFINITY ? 0.0f : expf(m[g] - mn);
        m[g] = mn;
        KV_VEC mv = KV_SET1(mn);
        KV_VEC sum = KV_ZERO();
        for (i = 0; i < t; i += KV_W) { /* KVS_TILE is a multiple of KV_W: the row has room */
            KV_VEC p = KV_EXP(KV_SUB(KV_LOADU(sg + i), mv));
            if (i + KV_W > t) p = KV_KEEP(p, t - i);
            KV_STOREU(sg + i, p);
            sum = KV_ADD(sum, p);
        }
        l[g] = l[g] * corr[g] + KV_HSUM(sum);
    }
}

/* Head h's next tile starts at row cs->cur[h], in its block cs->blk[h]: cs->key[h] = that row's K address (what
 * tiles are ordered by), INT64_MAX once the head's range is done. Updated only for the head that advanced, without
 * a division: the pick below runs once per tile. */
KVS_INLINE void KV_NAME(set_key)(const kvs_decode_job* j, kvs_chunk_state* cs, int h) {
    cs->key[h] = cs->cur[h] < cs->end[h]
                     ? j->kb[j->off[h] + cs->blk[h]] + (cs->cur[h] - cs->blk[h] * j->br) * j->krb
                     : INT64_MAX;
}

/* The head whose next tile lies lowest in memory, or -1 when every head is done. */
KVS_INLINE int KV_NAME(next_head)(int n_kv, const int64_t* key) {
    int best = -1;
    int64_t lo = INT64_MAX;
    for (int h = 0; h < n_kv; h++) {
        if (key[h] < lo) {
            lo = key[h];
            best = h;
        }
    }
    return best;
}

/* Attends rows [b0 * br, b1 * br) of every kv head (each clipped to its length), leaving head h's unnormalised
 * output in cs->acc + h * cs->stride and its running max / sum in cs->m / cs->l + h * G.
 *
 * Visiting order. Each head's tiles are attended in row order (the online softmax of a head is the same sequence of
 * steps whatever the order across heads, so the result does not depend on where blocks lie), but across heads the
 * next tile is always the one whose K rows lie lowest in memory. Blocks filled by one large append lie head after
 * head, and then this is head after head; blocks filled token by token (every head's next block allocated at the
 * same moment) lie block after block, and then the chunk is read block index by block index across the heads, as
 * the bytes lie, instead of jumping ~16 blocks ahead for every 8-16 KiB read. The next tile in this order is the
 * one prefetched while the current one is computed. */
KVS_INLINE void KV_NAME(run_chunk)(const kvs_decode_job* j, int64_t b0, int64_t b1, kvs_chunk_state* cs) {
    const int G = j->G, D = j->D, Dp = j->Dp, br = j->br, n_kv = j->n_kv;
    const int64_t krb = j->krb, vrb = j->vrb;
    const kvs_score_fn score = j->score;
    const kvs_value_fn value = j->value;
    for (int h = 0; h < n_kv; h++) {
        int64_t r0 = b0 * br, r1 = b1 * br < j->len[h] ? b1 * br : j->len[h];
        cs->cur[h] = r0;
        cs->end[h] = r1 > r0 ? r1 : r0;
        cs->blk[h] = b0;
        KV_NAME(set_key)(j, cs, h);
        if (r0 >= r1) continue;
        float* qsh = cs->qs + (size_t)h * cs->stride;
        for (int g = 0; g < G; g++) {
            const float* qg = j->q + ((int64_t)h * G + g) * D;
            float* dst = qsh + (int64_t)g * Dp;
            for (int d = 0; d < D; d++) dst[d] = qg[d] * j->scale;
            for (int d = D; d < Dp; d++) dst[d] = 0.0f;
            cs->m[h * G + g] = -INFINITY;
            cs->l[h * G + g] = 0.0f;
        }
        memset(cs->acc + (size_t)h * cs->stride, 0, sizeof(float) * (size_t)G * Dp);
        if (j->qint) kvs_iq_quantise(G, D, Dp, qsh, cs->qq + (size_t)h * cs->qq_bytes); /* of the scaled query */
    }
    int h = KV_NAME(next_head)(n_kv, cs->key);
    while (h >= 0) {
        const int64_t b = cs->blk[h], rin = cs->cur[h] - b * br;
        int64_t t = br - rin; /* to the end of the block, of the head's range, and at most KVS_TILE rows */
        if (t > cs->end[h] - cs->cur[h]) t = cs->end[h] - cs->cur[h];
        if (t > KVS_TILE) t = KVS_TILE;
        const char* kp = (const char*)(intptr_t)j->kb[j->off[h] + b] + rin * krb;
        const char* vp = (const char*)(intptr_t)j->vb[j->off[h] + b] + rin * vrb;
        cs->cur[h] += t;
        if (rin + t == br) cs->blk[h]++;
        KV_NAME(set_key)(j, cs, h);
        /* the tile visited next, prefetched while this one is computed (NULL after the last) */
        const int hn = KV_NAME(next_head)(n_kv, cs->key);
        const char *nk = NULL, *nv = NULL;
        if (hn >= 0) {
            nk = (const char*)(intptr_t)cs->key[hn];
            nv = (const char*)(intptr_t)j->vb[j->off[hn] + cs->blk[hn]] + (cs->cur[hn] - cs->blk[hn] * br) * vrb;
        }
        const float* qarg = j->qint ? (const float*)(cs->qq + (size_t)h * cs->qq_bytes) : cs->qs + (size_t)h * cs->stride;
        float* acc = cs->acc + (size_t)h * cs->stride;
        score(G, D, Dp, kp, krb, (int)t, qarg, cs->s, nk);           /* the K type's score loop */
        KV_NAME(softmax_tile)(G, (int)t, cs->s, cs->m + h * G, cs->l + h * G, cs->corr);
        value(G, D, Dp, vp, vrb, (int)t, cs->s, acc, cs->corr, nv);   /* the V type's value loop */
        h = hn;
    }
}

/* The chunk kernel of this instruction set: the job names its K type's score loop and its V type's value loop
 * (kvs_score_<dtype>, kvs_value_<dtype> below), so any (K, V) pair runs with both loops' dtype a compile-time
 * constant, and a batch and a single call run the same code. */
void KV_NAME(kvs_chunk)(const void* job, int64_t b0, int64_t b1, void* state) {
    KV_NAME(run_chunk)((const kvs_decode_job*)job, b0, b1, (kvs_chunk_state*)state);
}

#define KV_LOOPS(N, C)                                                                                        \
    void KV_NAME(kvs_score_##N)(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qs,     \
                                float* s, const char* nk) {                                                   \
        KV_NAME(score_tile)(C, G, D, Dp, kp, rb, t, qs, s, nk);                                               \
    }                                                                                                         \
    void KV_NAME(kvs_value_##N)(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p,     \
                                float* acc, const float* corr, const char* nv) {                              \
        KV_NAME(value_tile)(C, G, D, Dp, vp, rb, t, p, acc, corr, nv);                                        \
    }
KV_LOOPS(f32, KVS_DTYPE_F32)
KV_LOOPS(f16, KVS_DTYPE_F16)
KV_LOOPS(bf16, KVS_DTYPE_BF16)
KV_LOOPS(q8_0, KVS_DTYPE_Q8_0)
KV_LOOPS(q4_0, KVS_DTYPE_Q4_0)
#undef KV_LOOPS
