/* Persistent worker pool and per-thread scratch for the kernels.
 *
 * Why persistent: starting threads per call costs tens of microseconds, as much as a whole decode step at a
 * short context. Workers are started on first need and live as long as the process. Each worker has its own
 * mailbox (a sequence number it waits on with a short spin, then a futex), so a call wakes exactly the workers
 * it uses. The caller always does share 0 itself. One call at a time owns the pool; a concurrent caller does not
 * queue behind it but runs its kernel single-threaded (n = 1), which is what a busy 2-core machine wants anyway. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "attn_internal.h"

/* How long an idle worker (or the waiting caller) spins before sleeping in the kernel: long enough to catch
 * back-to-back calls (consecutive layers), short enough not to burn a shared core. Iterations of _mm_pause. */
#define SPIN_ITERATIONS 4000

typedef struct {
    _Atomic uint32_t seq;      /* bumped by the dispatcher for every job; the worker's futex word */
    _Atomic uint32_t sleeping; /* the worker is (about to be) in futex_wait on seq */
    kvs_task_fn fn;
    void* ctx;
    int n;
    int w;
    char pad[64 - 2 * sizeof(uint32_t) - sizeof(kvs_task_fn) - sizeof(void*) - 2 * sizeof(int)];
} mailbox_t;

static mailbox_t mailboxes[KVS_MAX_THREADS] __attribute__((aligned(64)));
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int started; /* workers 1..started exist; only changed under pool_lock */
static _Atomic int32_t remaining __attribute__((aligned(64))); /* workers of the current job still running */
static _Atomic uint32_t caller_sleeping;

static long futex(_Atomic uint32_t* addr, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t*)addr, op, val, NULL, NULL, 0);
}

static void* worker_main(void* arg) {
    mailbox_t* mb = (mailbox_t*)arg;
    uint32_t seen = 0;
    for (;;) {
        uint32_t s = atomic_load_explicit(&mb->seq, memory_order_acquire);
        for (int i = 0; s == seen && i < SPIN_ITERATIONS; i++) {
            _mm_pause();
            s = atomic_load_explicit(&mb->seq, memory_order_acquire);
        }
        if (s == seen) {
            /* Dekker with the dispatcher: announce sleeping, then re-check; it stores seq, then checks sleeping. */
            atomic_store(&mb->sleeping, 1);
            s = atomic_load(&mb->seq);
            if (s == seen) {
                futex(&mb->seq, FUTEX_WAIT_PRIVATE, seen);
            }
            atomic_store(&mb->sleeping, 0);
            continue;
        }
        seen = s;
        mb->fn(mb->ctx, mb->w, mb->n);
        if (atomic_fetch_sub(&remaining, 1) == 1 && atomic_load(&caller_sleeping)) {
            futex((_Atomic uint32_t*)&remaining, FUTEX_WAKE_PRIVATE, 1);
        }
    }
    return NULL;
}

/* Starts workers until `want` exist (or creation fails); returns how many exist. Called under pool_lock. */
static int ensure_workers(int want) {
    while (started < want) {
        int w = started + 1;
        mailbox_t* mb = &mailboxes[w];
        mb->w = w;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_t t;
        int rc = pthread_create(&t, &attr, worker_main, mb);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "kvslab-%d", w & 63);
        pthread_setname_np(t, name);
        started = w;
    }
    return started;
}

void kvs_pool_run(kvs_task_fn fn, void* ctx, int n) {
    if (n > KVS_MAX_THREADS) {
        n = KVS_MAX_THREADS;
    }
    if (n <= 1 || pthread_mutex_trylock(&pool_lock) != 0) {
        fn(ctx, 0, 1);
        return;
    }
    int have = ensure_workers(n - 1);
    if (have < n - 1) {
        n = have + 1;
    }
    if (n <= 1) {
        pthread_mutex_unlock(&pool_lock);
        fn(ctx, 0, 1);
        return;
    }
    atomic_store(&remaining, n - 1);
    for (int w = 1; w < n; w++) {
        mailbox_t* mb = &mailboxes[w];
        mb->fn = fn;
        mb->ctx = ctx;
        mb->n = n;
        atomic_fetch_add(&mb->seq, 1); /* seq_cst: ordered before the sleeping check below */
        if (atomic_load(&mb->sleeping)) {
            futex(&mb->seq, FUTEX_WAKE_PRIVATE, 1);
        }
    }
    fn(ctx, 0, n);
    int32_t r = atomic_load_explicit(&remaining, memory_order_acquire);
    for (int i = 0; r != 0 && i < SPIN_ITERATIONS * 4; i++) {
        _mm_pause();
        r = atomic_load_explicit(&remaining, memory_order_acquire);
    }
    while (r != 0) {
        atomic_store(&caller_sleeping, 1);
        r = atomic_load(&remaining);
        if (r != 0) {
            futex((_Atomic uint32_t*)&remaining, FUTEX_WAIT_PRIVATE, (uint32_t)r);
        }
        atomic_store(&caller_sleeping, 0);
        r = atomic_load_explicit(&remaining, memory_order_acquire);
    }
    pthread_mutex_unlock(&pool_lock);
}

int32_t kvs_pool_threads(void) {
    pthread_mutex_lock(&pool_lock);
    int s = started;
    pthread_mutex_unlock(&pool_lock);
    return s;
}

/* ---- per-thread scratch ---- */

typedef struct {
    void* ptr[KVS_SCRATCH_SLOTS];
    size_t size[KVS_SCRATCH_SLOTS];
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread scratch_t* tls_scratch;

static void scratch_free(void* p) {
    scratch_t* s = (scratch_t*)p;
    for (int i = 0; i < KVS_SCRATCH_SLOTS; i++) {
        free(s->ptr[i]);
    }
    free(s);
}

static void scratch_init(void) {
    pthread_key_create(&scratch_key, scratch_free);
}

void* kvs_scratch(int slot, size_t bytes) {
    scratch_t* s = tls_scratch;
    if (s == NULL) {
        pthread_once(&scratch_once, scratch_init);
        s = (scratch_t*)calloc(1, sizeof(scratch_t));
        if (s == NULL) {
            return NULL;
        }
        tls_scratch = s;
        pthread_setspecific(scratch_key, s); /* frees it when the thread exits */
    }
    if (s->size[slot] < bytes) {
        size_t want = (bytes + 4095) & ~(size_t)4095;
        void* p = NULL;
        if (posix_memalign(&p, 64, want) != 0) {
            return NULL;
        }
        free(s->ptr[slot]);
        s->ptr[slot] = p;
        s->size[slot] = want;
    }
    return s->ptr[slot];
}
