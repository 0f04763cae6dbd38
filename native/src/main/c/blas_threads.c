/* See blas_threads.h. A refcount under one mutex: cheap next to any product worth calling OpenBLAS for. */
#include "blas_threads.h"
#include "attn_internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users;
static int blas_saved_threads;

void kvs_blas_single_enter(void) {
    pthread_mutex_lock(&blas_lock);
    if (blas_users++ == 0) {
        blas_saved_threads = openblas_get_num_threads();
        if (blas_saved_threads != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}

void kvs_blas_single_leave(void) {
    pthread_mutex_lock(&blas_lock);
    if (--blas_users == 0 && blas_saved_threads != 1) openblas_set_num_threads(blas_saved_threads);
    pthread_mutex_unlock(&blas_lock);
}

int kvs_blas_enter_if_small(int64_t m, int64_t n, int64_t k) {
    if (m * n * k >= KVS_BLAS_SMALL_FMAS) return 0;
    kvs_blas_single_enter();
    return 1;
}

void kvs_blas_leave_if(int entered) {
    if (entered) kvs_blas_single_leave();
}

typedef struct {
    kvs_blas_item_fn fn;
    void *ctx;
    int32_t items;
    float *caller_scratch;
    size_t scratch_bytes;
    _Atomic int32_t next;
} items_job;

static void items_task(void *arg, int w, int n) {
    (void) n;
    items_job *j = (items_job *) arg;
    float *scratch = w == 0 ? j->caller_scratch
                            : (j->scratch_bytes > 0 ? (float *) kvs_scratch(KVS_SCRATCH_WORK2, j->scratch_bytes) : NULL);
    if (w != 0 && j->scratch_bytes > 0 && scratch == NULL) return; /* the others take its share */
    for (;;) {
        const int32_t item = atomic_fetch_add(&j->next, 1);
        if (item >= j->items) return;
        j->fn(j->ctx, item, scratch);
    }
}

void kvs_blas_run_items(kvs_blas_item_fn fn, void *ctx, int32_t items, int64_t fmas_per_item, float *caller_scratch,
                        size_t scratch_bytes) {
    if (fmas_per_item < KVS_BLAS_SMALL_FMAS || items <= 1) {
        /* small (churn's every product): the caller alone, no pool, the same path as kvs_blas_enter_if_small */
        kvs_blas_single_enter();
        for (int32_t i = 0; i < items; i++) fn(ctx, i, caller_scratch);
        kvs_blas_single_leave();
        return;
    }
    /* the thread count OpenBLAS would use (OPENBLAS_NUM_THREADS, else the cores), read before entering
     * single-threaded mode (or, when another caller is inside such a window, the count it saved) */
    pthread_mutex_lock(&blas_lock);
    int threads = blas_users > 0 ? blas_saved_threads : openblas_get_num_threads();
    pthread_mutex_unlock(&blas_lock);
    if (threads < 1) threads = 1;
    if (threads > items) threads = items;
    items_job j = {fn, ctx, items, caller_scratch, scratch_bytes, 0};
    kvs_blas_single_enter();
    kvs_pool_run(items_task, &j, threads); /* n = 1 (or a busy pool): the caller runs every item */
    kvs_blas_single_leave();
}
