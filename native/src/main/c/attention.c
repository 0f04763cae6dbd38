/* Decode attention over paged K/V: one query token, GQA-aware, online softmax in fp32.
 *
 * Work unit: a chunk, a range of block indices [b0, b1) taken in every kv head (each head's rows b0 * br up to
 * b1 * br or its length). Within a chunk, each head's tiles (at most one block, at most KVS_TILE rows) are attended
 * in row order: the kernel computes the scores of ALL the group's query heads against the tile's K rows, updates
 * the head's running max/sum (online softmax) and accumulates the tile's V rows into all the group's outputs. A tile
 * of K or V is at most 64 rows (32 KiB in f32), so while the group's query heads are processed in chunks of up to 8
 * the tile stays in L1/L2 and each row comes from memory once per call. Across heads the kernel visits the tile
 * whose K rows lie lowest in memory next (attn_decode_impl.h: so blocks placed head after head, by a large append,
 * and blocks placed block after block, by token-by-token appends, are both read in address order), and prefetches
 * that next tile's K and V lines while the current tile is computed, so several blocks' misses are in flight.
 * The chunk kernels themselves live in attn_decode_impl.h, instantiated for AVX2 and (chosen at run time by
 * cpuid) AVX-512.
 *
 * Threads: the block indices of a sequence are cut into CHUNKS_PER_THREAD x n ranges of equal rows (n from the
 * sequence's own size and the thread limit); a head cut between chunks yields partial (max, sum, unnormalised
 * output) triples that the caller merges by log-sum-exp. The cuts depend only on the heads' lengths, never on
 * where blocks lie, so the result of a call does not change when blocks move (compaction) or are placed otherwise.
 * A batched call cuts every sequence exactly so, and the chunks of all its sequences form one work list, which the
 * caller and up to n - 1 pool workers take dynamically: the work is split by (sequence, block range), and each
 * sequence's arithmetic is that of a call on it alone. Short work runs on the calling thread alone (waking a
 * worker would cost more than it saves). */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "attn_decode.h"

#define MIN_BYTES_PER_THREAD (256 * 1024) /* K+V bytes below which another thread does not pay */
#define CHUNKS_PER_THREAD 4                /* work is split this much finer than the thread count */

/* ---- instruction-set choice: 2 = AVX-512 kernels, 1 = AVX2 kernels; 0 = not decided yet ---- */
static _Atomic int isa_level;

static int detect_isa(void) {
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0) */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                   && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
               ? 2
               : 1;
}

int32_t kvs_attn_set_isa(int32_t level) {
    int best = detect_isa();
    int want = level == 1 ? 1 : best;
    atomic_store(&isa_level, want);
    return want;
}

static int current_isa(void) {
    int l = atomic_load_explicit(&isa_level, memory_order_relaxed);
    if (l == 0) {
        l = detect_isa();
        atomic_store(&isa_level, l);
    }
    return l;
}

/* The decode kernels by instruction set (0 = AVX2, 1 = AVX-512): one chunk driver, and per dtype code a score
 * loop (used for K rows) and a value loop (used for V rows); NULL = no such dtype. The driver below never looks at
 * the dtypes themselves: a job names the score loop of its K type and the value loop of its V type, so K and V may
 * differ, and a new element type is its two loops and their entries here. */
#define MAX_DTYPES 8
typedef struct {
    kvs_chunk_fn chunk;
    kvs_score_fn score[MAX_DTYPES];
    kvs_value_fn value[MAX_DTYPES];
} kernel_set;
#define LOOPS(ISA)                                                                                             \
    {kvs_chunk_##ISA,                                                                                       \
     {[KVS_DTYPE_F32] = kvs_score_f32_##ISA, [KVS_DTYPE_F16] = kvs_score_f16_##ISA,                           \
      [KVS_DTYPE_BF16] = kvs_score_bf16_##ISA, [KVS_DTYPE_Q8_0] = kvs_score_q8_0_##ISA,                       \
      [KVS_DTYPE_Q4_0] = kvs_score_q4_0_##ISA},                                                               \
     {[KVS_DTYPE_F32] = kvs_value_f32_##ISA, [KVS_DTYPE_F16] = kvs_value_f16_##ISA,                           \
      [KVS_DTYPE_BF16] = kvs_value_bf16_##ISA, [KVS_DTYPE_Q8_0] = kvs_value_q8_0_##ISA,                       \
      [KVS_DTYPE_Q4_0] = kvs_value_q4_0_##ISA}}
static const kernel_set KERNELS[2] = {LOOPS(avx2), LOOPS(avx512)};
#undef LOOPS

/* The kernels of a (K dtype, V dtype) pair, all of one instruction set; NULL for an unknown dtype. */
static const kernel_set* pick_kernels(int isa, int k_dtype, int v_dtype, int head_dim) {
    if (k_dtype < 0 || k_dtype >= MAX_DTYPES || v_dtype < 0 || v_dtype >= MAX_DTYPES) return NULL;
    /* the 512-bit kernels want whole zmm rows; other head dims take the AVX2 ones (which handle any tail) */
    const kernel_set* k = &KERNELS[isa == 2 && head_dim % 16 == 0 ? 1 : 0];
    return k->score[k_dtype] != NULL && k->value[v_dtype] != NULL ? k : NULL;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

typedef kvs_decode_job decode_job;
typedef kvs_chunk_state chunk_state;
#define TILE KVS_TILE

/* Rows of all heads in blocks [0, B): each head's length, capped at B blocks. */
static int64_t rows_below(const decode_job* j, int64_t B) {
    int64_t rows = 0, cap = B * j->br;
    for (int h = 0; h < j->n_kv; h++) rows += j->len[h] < cap ? j->len[h] : cap;
    return rows;
}

/* Start of chunk w of n: the first block index B with at least w/n of all rows below it (so chunks hold equal
 * rows, whatever the heads' lengths); 0 and the longest head's block count at the ends. */
static int64_t boundary(const decode_job* j, int w, int n) {
    if (w <= 0) return 0;
    if (w >= n) return j->blocks;
    int64_t want = (int64_t)((__int128)j->total * w / n);
    int64_t lo = 0, hi = j->blocks;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rows_below(j, mid) >= want) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* Attends blocks [b0, b1) of every head; heads wholly inside are finished straight into out, heads cut at a
 * boundary leave a partial result in slot `chunk`. */
static void run_range(decode_job* j, int64_t b0, int64_t b1, int chunk, chunk_state* st) {
    const int G = j->G, Dp = j->Dp;
    j->chunk(j, b0, b1, st);
    for (int h = 0; h < j->n_kv; h++) {
        int64_t len = j->len[h], r0 = b0 * j->br, r1 = b1 * j->br < len ? b1 * j->br : len;
        if (r0 >= r1) continue;
        const float* acc = st->acc + (size_t)h * st->stride;
        const float* m = st->m + (size_t)h * G;
        const float* l = st->l + (size_t)h * G;
        if (r0 == 0 && r1 == len) { /* the whole head: normalise straight into out */
            for (int g = 0; g < G; g++) {
                int64_t qh = (int64_t)h * G + g;
                float inv = 1.0f / l[g];
                for (int d = 0; d < j->D; d++) j->out[qh * j->D + d] = acc[(size_t)g * Dp + d] * inv;
                if (j->lse != NULL) j->lse[qh] = m[g] + logf(l[g]);
            }
        } else {
            size_t slot = (size_t)chunk * j->n_kv + h;
            memcpy(j->part_acc + slot * G * Dp, acc, sizeof(float) * (size_t)G * Dp);
            for (int g = 0; g < G; g++) {
                j->part_ml[(slot * G + g) * 2] = m[g];
                j->part_ml[(slot * G + g) * 2 + 1] = l[g];
            }
            j->part_valid[slot] = 1;
        }
    }
}

/* One batched call: the sequences' jobs and the work list of all their chunks. */
typedef struct {
    decode_job* jobs;       /* [n_seq] */
    const int* first_item;  /* [n_seq + 1]: sequence s owns work items first_item[s] .. first_item[s + 1] - 1 */
    int n_seq;
    int items;
    int n_kv, G, Dp;
    int qint; /* some sequence's scores take the quantised query: the workers' scratch holds one */
    _Atomic int next_item;
    _Atomic int error;
} batch_job;

/* The sequence owning work item c: the last s with first_item[s] <= c (skipping sequences without items). */
static int seq_of(const batch_job* b, int c) {
    int lo = 0, hi = b->n_seq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (b->first_item[mid] <= c) lo = mid; else hi = mid - 1;
    }
    return lo;
}

/* Lays a worker's chunk state out in raw (64-byte aligned; NULL: only its size) and returns its bytes. Per head:
 * queries and running output (G x Dp each), max and sum (G each); shared: one tile's scores and corr. A head's
 * queries and running output lie side by side, [qs_h acc_h qs_h+1 ...]: with all queries first and all outputs after
 * them, qs_h and acc_h sat a multiple of 4 KiB apart, in the same L1 sets (measured ~5% slower); a head's output
 * starts 512 bytes further when its queries alone fill a multiple of 4 KiB (group 8, head dim 128). */
static size_t chunk_state_at(char* raw, int n_kv, int G, int Dp, int qint, chunk_state* st) {
    const size_t per_head = align64(sizeof(float) * (size_t)G * Dp);
    const size_t acc_at = per_head % 4096 == 0 ? per_head + 512 : per_head;
    const size_t head_bytes = acc_at + per_head;
    const size_t heads_f = align64(sizeof(float) * (size_t)n_kv * G);
    const size_t heads_i = align64(sizeof(int64_t) * (size_t)n_kv);
    const size_t qq_bytes = qint ? align64(kvs_iq_bytes(G, Dp)) : 0;
    /* offsets of the parts, in order */
    const size_t m_at = head_bytes * n_kv, l_at = m_at + heads_f, s_at = l_at + heads_f;
    const size_t cur_at = s_at + align64(sizeof(float) * ((size_t)G * TILE + G));
    const size_t end_at = cur_at + heads_i, blk_at = end_at + heads_i, key_at = blk_at + heads_i;
    const size_t qq_at = key_at + heads_i, total = qq_at + qq_bytes * n_kv;
    if (raw != NULL) {
        st->qs = (float*)raw;
        st->acc = (float*)(raw + acc_at);
        st->stride = head_bytes / sizeof(float);
        st->m = (float*)(raw + m_at);
        st->l = (float*)(raw + l_at);
        st->s = (float*)(raw + s_at);
        st->corr = st->s + (size_t)G * TILE;
        st->cur = (int64_t*)(raw + cur_at);
        st->end = (int64_t*)(raw + end_at);
        st->blk = (int64_t*)(raw + blk_at);
        st->key = (int64_t*)(raw + key_at);
        st->qq = qint ? raw + qq_at : NULL;
        st->qq_bytes = qq_bytes;
    }
    return total;
}

/* A worker takes work items (chunks of some sequence) until none are left. Chunks are handed out dynamically
 * rather than one fixed range per thread, so a worker the OS has descheduled (a busy machine, other threads of
 * the JVM) delays the call by at most one chunk: the others take its share. */
static void decode_task(void* ctx, int w, int n) {
    (void)w;
    (void)n;
    batch_job* b = (batch_job*)ctx;
    const int n_kv = b->n_kv, G = b->G, Dp = b->Dp;
    size_t bytes = chunk_state_at(NULL, n_kv, G, Dp, b->qint, NULL);
    char* raw = (char*)kvs_scratch(KVS_SCRATCH_WORK, bytes);
    if (raw == NULL) {
        atomic_store(&b->error, KVS_ERR_NO_MEMORY);
        return;
    }
    chunk_state st;
    chunk_state_at(raw, n_kv, G, Dp, b->qint, &st);
    for (;;) {
        int c = atomic_fetch_add(&b->next_item, 1);
        if (c >= b->items) return;
        int s = seq_of(b, c);
        decode_job* j = &b->jobs[s];
        int k = c - b->first_item[s];
        int64_t b0 = boundary(j, k, j->chunks), b1 = boundary(j, k + 1, j->chunks);
        if (b0 < b1) run_range(j, b0, b1, k, &st);
    }
}

/* Combines the partial results of heads cut between chunks: weights exp(m_c - M) for M the largest max. */
static void merge_partials(decode_job* j, int n) {
    const int G = j->G, D = j->D, Dp = j->Dp;
    for (int h = 0; h < j->n_kv; h++) {
        int any = 0;
        for (int w = 0; w < n; w++) any |= j->part_valid[(size_t)w * j->n_kv + h];
        if (!any) continue;
        for (int g = 0; g < G; g++) {
            float M = -INFINITY;
            for (int w = 0; w < n; w++) {
                size_t slot = (size_t)w * j->n_kv + h;
                if (j->part_valid[slot] && j->part_ml[(slot * G + g) * 2] > M) M = j->part_ml[(slot * G + g) * 2];
            }
            int64_t qh = (int64_t)h * G + g;
            float* o = j->out + qh * D;
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            float lsum = 0.0f;
            for (int w = 0; w < n; w++) {
                size_t slot = (size_t)w * j->n_kv + h;
                if (!j->part_valid[slot]) continue;
                float f = expf(j->part_ml[(slot * G + g) * 2] - M);
                lsum += j->part_ml[(slot * G + g) * 2 + 1] * f;
                const float* a = j->part_acc + (slot * G + g) * Dp;
                for (int d = 0; d < D; d++) o[d] += a[d] * f;
            }
            float inv = 1.0f / lsum;
            for (int d = 0; d < D; d++) o[d] *= inv;
            if (j->lse != NULL) j->lse[qh] = M + logf(lsum);
        }
    }
}

/* How a call on sequence d alone cuts it: its rows in total, and into how many chunks (n from its size and the
 * thread limit, CHUNKS_PER_THREAD chunks per thread, each at least half of MIN_BYTES_PER_THREAD). */
static int plan_chunks(const kvs_decode_seq* d, int n_kv, int64_t kv_rb, int n_threads, int64_t* total_out) {
    int64_t total = 0;
    for (int h = 0; h < n_kv; h++) total += d->len[h];
    *total_out = total;
    int n = n_threads;
    int64_t by_size = total * kv_rb / MIN_BYTES_PER_THREAD; /* kv_rb: bytes of a K row plus a V row */
    if (by_size < n) n = by_size < 1 ? 1 : (int)by_size;
    return n == 1 ? 1 : (int)(2 * by_size < (int64_t)n * CHUNKS_PER_THREAD ? 2 * by_size : n * CHUNKS_PER_THREAD);
}

/* Bytes of the partial results of a sequence cut into chunks (0 when it is not cut). */
static size_t part_bytes_of(int chunks, int n_kv, int group, int Dp) {
    if (chunks <= 1) return 0;
    return align64(sizeof(float) * (size_t)chunks * n_kv * group * Dp)
         + align64(sizeof(float) * (size_t)chunks * n_kv * group * 2) + align64((size_t)chunks * n_kv);
}

int32_t kvs_attn_decode_batch(int32_t n_seq, const kvs_decode_seq* seqs, const float* q, float* out, float* lse,
                              int32_t n_kv, int32_t group, int32_t head_dim, int32_t block_rows, float scale,
                              int32_t n_threads) {
    if (n_seq < 0 || n_kv <= 0 || group <= 0 || head_dim <= 0 || block_rows <= 0 || n_threads <= 0
        || n_threads > KVS_MAX_THREADS || (n_seq > 0 && (seqs == NULL || q == NULL || out == NULL))) {
        return KVS_ERR_ARGUMENT;
    }
    const int64_t tok = (int64_t)n_kv * group * head_dim;
    const int64_t heads = (int64_t)n_kv * group;
    const int isa = current_isa();
    const int Dp = (head_dim + 15) & ~15;
    size_t part_bytes = 0;
    for (int s = 0; s < n_seq; s++) {
        const kvs_decode_seq* d = &seqs[s];
        if ((d->k_dtype & ~KVS_QUERY_Q8_0) != (d->k_dtype & 0xff)) return KVS_ERR_ARGUMENT; /* unknown flag bits */
        if ((d->v_dtype & ~KVS_VALUE_INT8) != (d->v_dtype & 0xff)) return KVS_ERR_ARGUMENT;
        const int kd = d->k_dtype & 0xff, vd = d->v_dtype & 0xff;
        if (d->k_blocks == NULL || d->v_blocks == NULL || d->off == NULL
            || d->len == NULL || kvs_row_bytes(kd, head_dim) < 0 || kvs_row_bytes(vd, head_dim) < 0
            || pick_kernels(isa, kd, vd, head_dim) == NULL) {
            return KVS_ERR_ARGUMENT;
        }
        int64_t total;
        int chunks = plan_chunks(d, n_kv, kvs_row_bytes(kd, head_dim) + kvs_row_bytes(vd, head_dim),
                                 n_threads, &total);
        part_bytes += part_bytes_of(chunks, n_kv, group, Dp);
    }
    if (n_seq == 0) return KVS_OK;

    /* the call's bookkeeping in one scratch buffer: jobs, work-list offsets, partial results */
    size_t jobs_bytes = align64(sizeof(decode_job) * (size_t)n_seq);
    size_t items_bytes = align64(sizeof(int) * ((size_t)n_seq + 1));
    char* buf = (char*)kvs_scratch(KVS_SCRATCH_DISPATCH, jobs_bytes + items_bytes + part_bytes);
    if (buf == NULL) return KVS_ERR_NO_MEMORY;
    decode_job* jobs = (decode_job*)buf;
    int* first_item = (int*)(buf + jobs_bytes);
    char* part = buf + jobs_bytes + items_bytes;
    int64_t all_bytes = 0;
    int items = 0;
    for (int s = 0; s < n_seq; s++) {
        const kvs_decode_seq* d = &seqs[s];
        decode_job* j = &jobs[s];
        const int kd = d->k_dtype & 0xff, vd = d->v_dtype & 0xff;
        float* s_out = out + (int64_t)s * tok;
        float* s_lse = lse != NULL ? lse + (int64_t)s * heads : NULL;
        memset(j, 0, sizeof *j);
        j->n_kv = n_kv;
        j->G = group;
        j->D = head_dim;
        j->Dp = Dp;
        j->k_dtype = kd;
        j->v_dtype = vd;
        j->br = block_rows;
        j->krb = kvs_row_bytes(kd, head_dim);
        j->vrb = kvs_row_bytes(vd, head_dim);
        j->q = q + (int64_t)s * tok;
        j->kb = d->k_blocks;
        j->vb = d->v_blocks;
        j->off = d->off;
        j->len = d->len;
        j->scale = scale;
        j->out = s_out;
        j->lse = s_lse;
        const kernel_set* ks = pick_kernels(isa, kd, vd, head_dim);
        j->chunk = ks->chunk;
        j->score = ks->score[kd];
        /* the integer loops take rows of 32-value groups (at most 32 of them) or of one group below 32 values */
        const int int_rows = (head_dim % 32 == 0 && head_dim / 32 <= 32) || head_dim < 32;
        if ((d->k_dtype & KVS_QUERY_Q8_0) && kvs_quantised(kd) && int_rows) {
            j->score = kd == KVS_DTYPE_Q8_0 ? kvs_score_q8_0_iq : kvs_score_q4_0_iq; /* integer dot products */
            j->qint = 1;
        }
        j->value = ks->value[vd];
        if ((d->v_dtype & KVS_VALUE_INT8) && kvs_quantised(vd) && int_rows) {
            j->value = vd == KVS_DTYPE_Q8_0 ? kvs_value_q8_0_iv : kvs_value_q4_0_iv; /* integer weighted sums */
        }
        j->chunks = plan_chunks(d, n_kv, j->krb + j->vrb, n_threads, &j->total);
        j->blocks = 0;
        for (int h = 0; h < n_kv; h++) {
            int64_t nb = (d->len[h] + block_rows - 1) / block_rows;
            if (nb > j->blocks) j->blocks = nb;
        }
        if (j->chunks > 1) {
            j->part_acc = (float*)part;
            part += align64(sizeof(float) * (size_t)j->chunks * n_kv * group * Dp);
            j->part_ml = (float*)part;
            part += align64(sizeof(float) * (size_t)j->chunks * n_kv * group * 2);
            j->part_valid = (uint8_t*)part;
            part += align64((size_t)j->chunks * n_kv);
            memset(j->part_valid, 0, (size_t)j->chunks * n_kv);
        }
        for (int h = 0; h < n_kv; h++) { /* empty heads: nothing to attend to */
            if (d->len[h] != 0) continue;
            memset(s_out + (int64_t)h * group * head_dim, 0, sizeof(float) * (size_t)group * head_dim);
            if (s_lse != NULL) for (int g = 0; g < group; g++) s_lse[(int64_t)h * group + g] = -INFINITY;
        }
        first_item[s] = items;
        items += j->total > 0 ? j->chunks : 0;
        all_bytes += j->total * (j->krb + j->vrb);
    }
    first_item[n_seq] = items;
    if (items == 0) return KVS_OK;

    batch_job b;
    memset(&b, 0, sizeof b);
    b.jobs = jobs;
    b.first_item = first_item;
    b.n_seq = n_seq;
    b.items = items;
    b.n_kv = n_kv;
    b.G = group;
    b.Dp = Dp;
    for (int s = 0; s < n_seq; s++) b.qint |= jobs[s].qint;
    int n = n_threads;
    int64_t by_size = all_bytes / MIN_BYTES_PER_THREAD;
    if (by_size < n) n = by_size < 1 ? 1 : (int)by_size;
    if (items < n) n = items;
    if (n > 1) {
        kvs_pool_run(decode_task, &b, n); /* however many workers it gets, they take all items */
    } else {
        decode_task(&b, 0, 1);
    }
    for (int s = 0; s < n_seq; s++) {
        if (jobs[s].chunks > 1 && jobs[s].total > 0) merge_partials(&jobs[s], jobs[s].chunks);
    }
    return atomic_load(&b.error);
}

int32_t kvs_attn_decode(int32_t n_kv, int32_t group, int32_t head_dim, int32_t k_dtype, int32_t v_dtype,
                        int32_t block_rows, const float* q, const int64_t* k_blocks, const int64_t* v_blocks,
                        const int64_t* off, const int64_t* len, float scale, float* out, float* lse,
                        int32_t n_threads) {
    kvs_decode_seq one = {k_blocks, v_blocks, off, len, k_dtype, v_dtype};
    return kvs_attn_decode_batch(1, &one, q, out, lse, n_kv, group, head_dim, block_rows, scale, n_threads);
}
