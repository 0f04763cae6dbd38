/* OpenBLAS thread control shared by every kernel that calls OpenBLAS from inside libkvslab. */
#ifndef KVSLAB_BLAS_THREADS_H
#define KVSLAB_BLAS_THREADS_H
#include <stddef.h>
#include <stdint.h>

/* Products below this many multiply-adds run on the calling thread alone: for them OpenBLAS's thread hand-off
 * costs more than the product, and concurrent callers queue on its one thread server (10-30x slower under churn). */
#define KVS_BLAS_SMALL_FMAS (1LL << 24)

/* While any caller is inside an enter/leave pair, the library's OpenBLAS runs single-threaded; the previous
 * thread count is restored when the last one leaves. Other OpenBLAS users of the process are untouched
 * outside such windows. */
void kvs_blas_single_enter(void);
void kvs_blas_single_leave(void);

/* Enters single-threaded mode when m x n x k is below KVS_BLAS_SMALL_FMAS; returns whether it did (pass the
 * result to kvs_blas_leave_if). */
int kvs_blas_enter_if_small(int64_t m, int64_t n, int64_t k);
void kvs_blas_leave_if(int entered);

/* Runs fn(ctx, item, scratch) once for every item in [0, items): independent products of fmas_per_item
 * multiply-adds each (a tile, a head). Every OpenBLAS call inside fn runs single-threaded. Small items all run on
 * the calling thread; large ones are shared by the library's worker pool (attn_pool.c), as many workers as
 * OpenBLAS would have used threads, each claiming the next unclaimed item. Why: OpenBLAS's own threads split every
 * product and busy-wait for each other at its end, so on an oversubscribed machine one descheduled thread stalls
 * the other at every product (docs/benchmarks.md, "blas" section); whole items per thread need no barrier but the
 * last, and a descheduled worker only delays the item it holds. The items see the same products, so a product's
 * bits do not depend on which thread runs it. scratch is caller_scratch on the calling thread and a per-worker
 * buffer of scratch_bytes elsewhere (a worker that cannot allocate one takes no item). */
typedef void (*kvs_blas_item_fn)(void *ctx, int32_t item, float *scratch);
void kvs_blas_run_items(kvs_blas_item_fn fn, void *ctx, int32_t items, int64_t fmas_per_item, float *caller_scratch,
                        size_t scratch_bytes);

#endif
