/* OpenBLAS thread control shared by every kernel that calls OpenBLAS from inside libkvslab. */
#ifndef KVSLAB_BLAS_THREADS_H
#define KVSLAB_BLAS_THREADS_H
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

#endif
