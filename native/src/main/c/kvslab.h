/* KVSlab native kernels. Every entry point trusts its arguments: the Java side validates them first.
 * The few cheap checks the kernels repeat return an error code instead of touching memory; they never abort. */
#ifndef KVSLAB_H
#define KVSLAB_H
#include <stdint.h>

/* Version of the ABI below; Java checks it at load time. */
int32_t kvs_abi_version(void);

/* Element types of stored K/V rows (the "dtype" argument). */
#define KVS_DTYPE_F32 0
#define KVS_DTYPE_F16 1  /* IEEE 754 binary16, converted with F16C */
#define KVS_DTYPE_BF16 2 /* bfloat16: the top 16 bits of a binary32 */
/* ggml block quantisations. A row of head_dim values is cut into groups of g = min(32, head_dim) values (head_dim
 * must be a multiple of 32 or below 32; even for q4_0); each group is an f16 scale d followed by its codes.
 * q8_0: g int8 codes q, value q*d (34 bytes per 32 values). q4_0: g/2 bytes, byte j = code of value j (low nibble)
 * | code of value j + g/2 (high nibble) << 4, value (code - 8)*d (18 bytes per 32 values). Rows are dequantised
 * in registers by the decode kernels and into a scratch tile by prefill. */
#define KVS_DTYPE_Q8_0 3
#define KVS_DTYPE_Q4_0 4
/* Flag a decode call's k_dtype may carry (k_dtype | KVS_QUERY_Q8_0; decode and batched decode only): for q8_0 and
 * q4_0 K rows, quantise each query head (after scaling) to q8_0 once per call (per group of min(32, head_dim)
 * values an f32 scale amax/127 and codes rint(x/scale)) and compute the scores as integer dot products of the
 * codes, times the two scales per group (llama.cpp's scheme). The scores then carry the query's rounding too, so
 * results differ from the exact path by more than float rounding. For other K types the flag is ignored
 * (exact path). Additive to ABI 4: a library without it rejects the flag with KVS_ERR_ARGUMENT. */
#define KVS_QUERY_Q8_0 0x100
/* Flag a decode call's v_dtype may carry (v_dtype | KVS_VALUE_INT8; decode and batched decode only): for q8_0 and
 * q4_0 V rows (head_dim a multiple of 32 or below 32), per tile of rows, query head and group of V values the
 * softmax weights times the rows' group scales are rounded to 8-bit codes (step = the tile's largest weight p times
 * its largest |scale|, over 127; codes rint(w/step)) and the output is the exact integer sum of those codes times the
 * V codes, times the step. Each weight is then off by at most min(|w|, step/2). For other V types the flag is ignored (exact path). Additive to ABI 4: a library
 * without it rejects the flag with KVS_ERR_ARGUMENT. The query flag above also applies to head_dim below 32 (one
 * group of head_dim values, as the store quantises such rows). */
#define KVS_VALUE_INT8 0x200

/* Return codes of the kernels. */
#define KVS_OK 0
#define KVS_ERR_ARGUMENT 1 /* a shape/dtype/thread argument out of range (Java validates first, so a bug) */
#define KVS_ERR_NO_MEMORY 2 /* scratch allocation failed */

/* Largest thread count a kernel accepts; the worker pool never grows beyond KVS_MAX_THREADS - 1 threads. */
#define KVS_MAX_THREADS 64

/* Decode attention (one query token per query head) over paged K/V.
 * K rows of head_dim elements of k_dtype and V rows of v_dtype (kvs_row_bytes bytes each: quantised dtypes store
 * groups; K and V rows may differ in type and size), block_rows rows per block. For kv head h in [0, n_kv) its rows 0..len[h]-1
 * live in blocks k_blocks[off[h] .. off[h+1]-1] (same for v_blocks); block addresses are raw pointers.
 * Query head qh = h*group + g uses kv head h. q and out are [n_kv*group*head_dim] floats. lse (nullable) gets
 * [n_kv*group] log-sum-exp values of the scaled scores; a head with len 0 gives out zeros and lse -inf.
 * Each kv head's rows are read once from memory for its whole group; long contexts are split across
 * n_threads threads (the caller plus a persistent worker pool) and merged by log-sum-exp.
 * This is kvs_attn_decode_batch with one sequence. */
int32_t kvs_attn_decode(int32_t n_kv, int32_t group, int32_t head_dim, int32_t k_dtype, int32_t v_dtype,
                        int32_t block_rows,
                        const float* q, const int64_t* k_blocks, const int64_t* v_blocks, const int64_t* off,
                        const int64_t* len, float scale, float* out, float* lse, int32_t n_threads);

/* One sequence of a batched decode call (40 bytes): the block tables of the layer being attended (as for
 * kvs_attn_decode: k_blocks/v_blocks indexed through off[n_kv + 1], len[n_kv] rows per kv head) and the element
 * types of its K and V rows. Its query and outputs are rows of the call's q, out and lse. */
typedef struct {
    const int64_t* k_blocks;
    const int64_t* v_blocks;
    const int64_t* off;      /* [n_kv + 1] */
    const int64_t* len;      /* [n_kv] */
    int32_t k_dtype;         /* KVS_DTYPE_* of the K rows */
    int32_t v_dtype;         /* KVS_DTYPE_* of the V rows */
} kvs_decode_seq;

/* Decode attention of n_seq sequences of one geometry in one call. Every sequence is cut into the same chunks
 * as kvs_attn_decode would cut it alone with n_threads, and its chunks are merged in the same order, so each
 * sequence's out and lse are bitwise those of kvs_attn_decode on it; the chunks of all sequences form one work
 * list that the caller and up to n_threads - 1 pool workers take dynamically (so a batch of short sequences,
 * each too short to split, still runs on several threads). n_seq may be 0.
 * Sequence s reads row s of q ([n_seq][n_kv*group*head_dim]) and writes row s of out (same shape) and of lse
 * ([n_seq][n_kv*group], or NULL for none). The tensors are arguments, not descriptor fields, so that a binding
 * keeps the caller's memory alive for the call. */
int32_t kvs_attn_decode_batch(int32_t n_seq, const kvs_decode_seq* seqs, const float* q, float* out, float* lse,
                              int32_t n_kv, int32_t group, int32_t head_dim, int32_t block_rows, float scale,
                              int32_t n_threads);

/* Causal prefill of the last n_q rows of each kv head: q and out are [n_q][n_kv*group][head_dim]; query i of kv
 * head h sees rows 0 .. len[h]-n_q+i (len[h] >= n_q). Uses OpenBLAS sgemm on tiles of queries x keys.
 * KVSlab does its own threading here (n_threads workers): while a prefill runs, the library's OpenBLAS is set to
 * one thread (restored afterwards), so there are no nested BLAS threads; OpenBLAS calls made concurrently by
 * other threads during that window run single-threaded too. K tiles are converted by k_dtype, V tiles by v_dtype. */
int32_t kvs_attn_prefill(int32_t n_kv, int32_t group, int32_t head_dim, int32_t k_dtype, int32_t v_dtype,
                         int32_t block_rows,
                         int32_t n_q, const float* q, const int64_t* k_blocks, const int64_t* v_blocks,
                         const int64_t* off, const int64_t* len, float scale, float* out, int32_t n_threads);

/* One token's rows of every KV head of a layer into their blocks (the store's append, one call per token and
 * layer): for head h, rows[4h] and rows[4h+1] are the byte offsets of its K and V row in k_src and v_src, rows[4h+2]
 * and rows[4h+3] the addresses they go to (key_row_bytes and value_row_bytes each). Copies bytes as they are (the
 * caller checked the values and chose the slots); rows of whole 64-byte lines at 64-byte aligned addresses are
 * written with non-temporal stores, and every store is visible when the call returns. Returns KVS_OK, or
 * KVS_ERR_ARGUMENT (nothing written) for a null pointer, heads < 1, a row size < 1, a negative offset or a zero
 * address. Since ABI 6. */
int32_t kvs_append_rows(const uint8_t* k_src, const uint8_t* v_src, const int64_t* rows, int32_t heads,
                        int64_t key_row_bytes, int64_t value_row_bytes);

/* rows fp32 rows of dim values, row r at src_base + src_from + r * src_stride (floats), converted to dtype
 * (KVS_DTYPE_F16 or KVS_DTYPE_BF16, rounded to nearest even) into consecutive rows of dim values from byte
 * dst_offset of dst_base. Base and offset apart so that Java passes a heap array and a block's slab
 * as they are (no slice objects). The caller checked every value (finite, within the type's range) and both extents.
 * Returns KVS_OK, or KVS_ERR_ARGUMENT (nothing written) for a null base, a negative offset, rows < 0, dim < 1,
 * src_stride < dim or another dtype. Since ABI 9. */
int32_t kvs_convert_rows(const float* src_base, int64_t src_from, int64_t src_stride, int32_t rows, int32_t dim,
                         void* dst_base, int64_t dst_offset, int32_t dtype);

/* Bytes of one stored row of head_dim values of dtype, or -1 if dtype cannot store such rows. */
int64_t kvs_row_bytes(int32_t dtype, int32_t head_dim);

/* Reads bytes of buf once with n_threads threads (vectorised loads, the buffer split into contiguous parts)
 * and returns a checksum of the data, so the reads cannot be optimised away. Timing it gives the machine's
 * read bandwidth for the same pool and thread count the kernels use. bytes is rounded down to 64. */
double kvs_read_bandwidth_probe(const void* buf, int64_t bytes, int32_t n_threads);

/* Chooses the decode kernels' instruction set: 1 = AVX2 only, anything else = the best the CPU supports
 * (AVX-512 when cpuid and the OS allow it). Returns the level now in use (1 = AVX2, 2 = AVX-512). For tests
 * and diagnostics; not thread-safe against concurrent kernel calls' choice (each call reads it once). */
int32_t kvs_attn_set_isa(int32_t level);

/* Number of worker threads the pool has started so far (for tests and diagnostics). */
int32_t kvs_pool_threads(void);

#endif
