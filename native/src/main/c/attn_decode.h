/* Internal interface between the decode driver (attention.c) and its vector-width-specific segment kernels
 * (attn_decode_avx2.c, attn_decode_avx512.c, both generated from attn_decode_impl.h). */
#ifndef KVS_ATTN_DECODE_H
#define KVS_ATTN_DECODE_H
#include <stdatomic.h>
#include "attn_internal.h"

#define KVS_TILE 64 /* max rows per tile; also the row stride of the score buffer */

/* One decode call. */
typedef struct {
    int n_kv, G, D, Dp, dtype, br;
    int64_t rb; /* bytes per row */
    const float* q;
    const int64_t *kb, *vb, *off, *len;
    float scale;
    float* out;
    float* lse;
    const int64_t* head_start; /* [n_kv + 1]: offsets of each head's rows when all heads are laid end to end */
    int64_t total;
    int chunks;          /* the rows are cut into this many ranges, taken by the workers dynamically */
    _Atomic int next_chunk;
    float* part_acc;     /* [chunks][n_kv][G][Dp] unnormalised partial outputs of heads cut between chunks */
    float* part_ml;      /* [chunks][n_kv][G][2]  their (max, sum) */
    uint8_t* part_valid; /* [chunks][n_kv] */
    void (*segment)(const void* job, int h, int64_t r0, int64_t r1, void* state);
    _Atomic int error;
} kvs_decode_job;

/* Per-worker state of one segment: scaled queries, running output, max, sum, scores (all 64-byte aligned,
 * rows Dp floats apart, Dp a multiple of 16). */
typedef struct {
    float* qs;   /* [G][Dp] */
    float* acc;  /* [G][Dp] */
    float* s;    /* [G][KVS_TILE] */
    float* m;    /* [G] */
    float* l;    /* [G] */
    float* corr; /* [G] */
} kvs_segment_state;

/* Segment kernels: attend the group of kv head h over rows [r0, r1), leaving the unnormalised output in
 * state->acc and the running max/sum in state->m/l. */
typedef void (*kvs_segment_fn)(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_f32_avx2(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_f16_avx2(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_bf16_avx2(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_q8_0_avx2(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_q4_0_avx2(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_f32_avx512(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_f16_avx512(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_bf16_avx512(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_q8_0_avx512(const void* job, int h, int64_t r0, int64_t r1, void* state);
void kvs_segment_q4_0_avx512(const void* job, int h, int64_t r0, int64_t r1, void* state);

#endif
