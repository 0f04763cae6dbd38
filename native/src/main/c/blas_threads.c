/* See blas_threads.h. A refcount under one mutex: cheap next to any product worth calling OpenBLAS for. */
#include "blas_threads.h"

#include <cblas.h>
#include <pthread.h>

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
