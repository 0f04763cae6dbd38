/* Read-bandwidth probe: the yardstick the decode benchmark divides by. Each thread streams its contiguous part
 * of the buffer through 8 independent 256-bit accumulators (integer adds: no FP latency chain can limit the
 * loads, and any bit pattern is fine), which is as fast as plain loads can drain memory on this machine. */
#include <stdatomic.h>
#include "attn_internal.h"

typedef struct {
    const char* buf;
    int64_t bytes;
    _Atomic uint64_t sum;
} probe_job;

static void probe_task(void* ctx, int w, int n) {
    probe_job* j = (probe_job*)ctx;
    int64_t lines = j->bytes / 64;
    int64_t l0 = lines * w / n, l1 = lines * (w + 1) / n;
    const char* p = j->buf + l0 * 64;
    const char* end = j->buf + l1 * 64;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (; p + 256 <= end; p += 256) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i*)(p + 0)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i*)(p + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i*)(p + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i*)(p + 96)));
        a4 = _mm256_add_epi64(a4, _mm256_loadu_si256((const __m256i*)(p + 128)));
        a5 = _mm256_add_epi64(a5, _mm256_loadu_si256((const __m256i*)(p + 160)));
        a6 = _mm256_add_epi64(a6, _mm256_loadu_si256((const __m256i*)(p + 192)));
        a7 = _mm256_add_epi64(a7, _mm256_loadu_si256((const __m256i*)(p + 224)));
    }
    for (; p < end; p += 64) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i*)(p + 0)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i*)(p + 32)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)),
                                 _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7)));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i*)lanes, s);
    atomic_fetch_add(&j->sum, lanes[0] + lanes[1] + lanes[2] + lanes[3]);
}

double kvs_read_bandwidth_probe(const void* buf, int64_t bytes, int32_t n_threads) {
    if (buf == NULL || bytes < 64 || n_threads <= 0 || n_threads > KVS_MAX_THREADS) {
        return 0.0;
    }
    probe_job j = {(const char*)buf, bytes & ~(int64_t)63, 0};
    kvs_pool_run(probe_task, &j, n_threads);
    return (double)atomic_load(&j.sum);
}
