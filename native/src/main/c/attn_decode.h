/* Internal interface between the decode driver (attention.c) and its vector-width-specific chunk kernels
 * (attn_decode_avx2.c, attn_decode_avx512.c, both generated from attn_decode_impl.h). */
#ifndef KVS_ATTN_DECODE_H
#define KVS_ATTN_DECODE_H
#include <stdatomic.h>
#include "attn_internal.h"

#define KVS_TILE 64 /* max rows per tile; also the row stride of the score buffer */

/* One decode call. */
typedef struct {
    int n_kv, G, D, Dp, k_dtype, v_dtype, br;
    int qint; /* 1: the score loop takes the query quantised by kvs_iq_quantise (KVS_QUERY_Q8_0), not f32 */
    int64_t krb, vrb; /* bytes per K row, per V row */
    const float* q;
    const int64_t *kb, *vb, *off, *len;
    float scale;
    float* out;
    float* lse;
    int64_t total;       /* rows of all heads */
    int64_t blocks;      /* blocks of the longest head */
    int chunks;          /* the block indices are cut into this many ranges, taken by the workers dynamically */
    float* part_acc;     /* [chunks][n_kv][G][Dp] unnormalised partial outputs of heads cut between chunks */
    float* part_ml;      /* [chunks][n_kv][G][2]  their (max, sum) */
    uint8_t* part_valid; /* [chunks][n_kv] */
    void (*chunk)(const void* job, int64_t b0, int64_t b1, void* state);
    /* the K type's score loop and the V type's value loop, of the chunk kernel's instruction set */
    void (*score)(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qs, float* s, const char* nk);
    void (*value)(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                  const float* corr, const char* nv);
} kvs_decode_job;

/* Per-worker state of one chunk: per kv head its scaled queries, running output, max and sum, and the scores of
 * the tile being attended (all 64-byte aligned, rows Dp floats apart, Dp a multiple of 16). */
typedef struct {
    float* qs;       /* head h's [G][Dp] at qs + h * stride */
    float* acc;      /* head h's [G][Dp] at acc + h * stride (beside its queries: see attention.c) */
    size_t stride;   /* floats from one head's queries (or output) to the next head's */
    float* m;        /* [n_kv][G] */
    float* l;        /* [n_kv][G] */
    float* s;        /* [G][KVS_TILE] */
    float* corr;     /* [G] */
    int64_t* cur;    /* [n_kv] each head's next row */
    int64_t* end;    /* [n_kv] and the end of its range */
    int64_t* blk;    /* [n_kv] the block of its next row */
    int64_t* key;    /* [n_kv] the K address of its next row (INT64_MAX when done): the visiting order */
    char* qq;        /* [n_kv] x qq_bytes: the quantised queries when the job's qint is set */
    size_t qq_bytes; /* kvs_iq_bytes(G, Dp), rounded up to 64 */
} kvs_chunk_state;

/* Tile loops, one per dtype and instruction set: the score loop of a tile of K rows (s[g][r] = <q_g, k_r>) and
 * the value loop of a tile of V rows (acc = acc * corr + p V). A decode job names the score loop of its K type and
 * the value loop of its V type, so K and V rows may have different types. */
typedef void (*kvs_score_fn)(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qs, float* s,
                             const char* nk);
typedef void (*kvs_value_fn)(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                             const float* corr, const char* nv);

/* Chunk kernels: attend blocks [b0, b1) of every kv head's group (rows b0 * br up to b1 * br or the head's
 * length) with the job's score and value loops, leaving each head's unnormalised output and running max / sum in
 * the state (a kvs_chunk_state). */
typedef void (*kvs_chunk_fn)(const void* job, int64_t b0, int64_t b1, void* state);
void kvs_chunk_avx2(const void* job, int64_t b0, int64_t b1, void* state);
void kvs_chunk_avx512(const void* job, int64_t b0, int64_t b1, void* state);
#define KVS_LOOPS_DECL(N, ISA)                                                                                 \
    void kvs_score_##N##_##ISA(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qs,      \
                               float* s, const char* nk);                                                     \
    void kvs_value_##N##_##ISA(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p,      \
                               float* acc, const float* corr, const char* nv);
#define KVS_LOOPS_DECL_ISA(ISA)                                                                                \
    KVS_LOOPS_DECL(f32, ISA) KVS_LOOPS_DECL(f16, ISA) KVS_LOOPS_DECL(bf16, ISA) KVS_LOOPS_DECL(q8_0, ISA)      \
    KVS_LOOPS_DECL(q4_0, ISA)
KVS_LOOPS_DECL_ISA(avx2)
KVS_LOOPS_DECL_ISA(avx512)

/* Integer-query score loops (attn_decode_iq.c, 256-bit, used by both kernel sets) for q8_0 / q4_0 K rows of
 * head_dim a multiple of 32: qs is then the buffer kvs_iq_quantise filled, not f32 queries. */
size_t kvs_iq_bytes(int G, int Dp);
void kvs_iq_quantise(int G, int D, int Dp, const float* qs, void* qq);
void kvs_score_q8_0_iq(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qq, float* s,
                       const char* nk);
void kvs_score_q4_0_iq(int G, int D, int Dp, const char* kp, int64_t rb, int t, const float* qq, float* s,
                       const char* nk);

/* Integer value loops (attn_decode_iv.c, 256-bit, both kernel sets) for q8_0 / q4_0 V rows (KVS_VALUE_INT8): the
 * softmax weights times the rows' group scales rounded to 8-bit codes per (tile, head, group). */
void kvs_value_q8_0_iv(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                       const float* corr, const char* nv);
void kvs_value_q4_0_iv(int G, int D, int Dp, const char* vp, int64_t rb, int t, const float* p, float* acc,
                       const float* corr, const char* nv);

#endif
