/* Prefill driver: libs given are timed alternately, plus bare sgemm (OpenBLAS, 1 thread) in the same process. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <immintrin.h>
#include <cblas.h>
typedef int32_t (*prefill_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, const float*, const int64_t*,
                              const int64_t*, const int64_t*, const int64_t*, float, float*, int32_t);
extern void openblas_set_num_threads(int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static int64_t rowbytes(int dt, int D) { return dt == 0 ? 4 * D : dt <= 2 ? 2 * D : dt == 3 ? D / 32 * 34 : D / 32 * 18; }
int main(int argc, char** argv) {
    if (argc < 8) { fprintf(stderr, "pf dtype ctx n_q n_kv threads reps lib...\n"); return 1; }
    int dtype = atoi(argv[1]), ctx = atoi(argv[2]), nq = atoi(argv[3]), n_kv = atoi(argv[4]), thr = atoi(argv[5]), reps = atoi(argv[6]);
    int nl = argc - 7; prefill_fn f[8];
    for (int i = 0; i < nl; i++) {
        void* h = dlopen(argv[7 + i], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        f[i] = (prefill_fn)dlsym(h, "kvs_attn_prefill");
    }
    openblas_set_num_threads(thr);
    const int G = 4, D = 128, br = 32;
    int64_t rb = rowbytes(dtype, D), nb = (ctx + br - 1) / br;
    size_t bbytes = (size_t)br * rb, total = bbytes * 2 * nb * n_kv;
    char* arena = aligned_alloc(4096, (total + 4095) / 4096 * 4096);
    srand(1);
    for (size_t i = 0; i < total; i++) arena[i] = (char)(rand() & 0x3f);
    if (dtype == 0) for (size_t i = 0; i < total / 4; i++) ((float*)arena)[i] = (rand() / (float)RAND_MAX) - 0.5f;
    if (dtype == 1) for (size_t i = 0; i < total / 2; i++) ((uint16_t*)arena)[i] = _cvtss_sh((rand() / (float)RAND_MAX) - 0.5f, 0);
    int64_t* kb = malloc(8 * nb * n_kv), *vb = malloc(8 * nb * n_kv), off[65], len[64];
    size_t pos = 0;
    for (int64_t b = 0; b < nb; b++) for (int h = 0; h < n_kv; h++) {
        kb[h * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
        vb[h * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
    }
    for (int h = 0; h <= n_kv; h++) off[h] = (int64_t)h * nb;
    for (int h = 0; h < n_kv; h++) len[h] = ctx;
    size_t qn = (size_t)nq * n_kv * G * D;
    float* q = malloc(4 * qn), *out[8];
    for (size_t i = 0; i < qn; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < nl; i++) out[i] = malloc(4 * qn);
    double flops = 0;
    for (int h = 0; h < n_kv; h++) flops += 4.0 * G * D * (double)nq * (double)(len[h] - nq / 2.0);
    /* bare sgemm: 1024 x 4096 x 4096 chunks (a projection) */
    int SM = 256, SN = 4096, SK = 4096;
    float* A = malloc(4.0 * SM * SK), *B = malloc(4.0 * SK * SN), *C = malloc(4.0 * SM * SN);
    for (size_t i = 0; i < (size_t)SM * SK; i++) A[i] = rand() / (float)RAND_MAX;
    for (size_t i = 0; i < (size_t)SK * SN; i++) B[i] = rand() / (float)RAND_MAX;
    double* t = malloc(8 * reps * (nl + 1));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SM, SN, SK, 1, A, SK, B, SN, 0, C, SN);
    for (int i = 0; i < nl; i++) f[i](n_kv, G, D, dtype, br, nq, q, kb, vb, off, len, 0.088f, out[i], thr);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k <= nl; k++) {
            int i = (k + r) % (nl + 1);
            double t0 = now();
            if (i == nl) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SM, SN, SK, 1, A, SK, B, SN, 0, C, SN);
                t[i * reps + r] = 2.0 * SM * SN * SK / (now() - t0) / 1e9;
            } else {
                f[i](n_kv, G, D, dtype, br, nq, q, kb, vb, off, len, 0.088f, out[i], thr);
                t[i * reps + r] = flops / (now() - t0) / 1e9;
            }
        }
    }
    qsort(t + nl * reps, reps, 8, cmpd);
    double sg = t[nl * reps + reps / 2];
    printf("dtype=%d ctx=%d n_q=%d n_kv=%d thr=%d  bare sgemm %d x %d x %d: %.1f GFLOP/s\n", dtype, ctx, nq, n_kv, thr, SM, SN, SK, sg);
    for (int i = 0; i < nl; i++) {
        qsort(t + i * reps, reps, 8, cmpd);
        double g = t[i * reps + reps / 2];
        double maxrel = 0;
        for (size_t x = 0; x < qn; x++) { double d = fabs(out[i][x] - out[0][x]) / (fabs(out[0][x]) + 1e-3); if (d > maxrel) maxrel = d; }
        printf("  %-28s %.1f GFLOP/s  ratio to sgemm %.3f  (%.3f s/call)  max rel diff vs first %.2g\n", argv[7 + i], g, g / sg, flops / g / 1e9, maxrel);
    }
    return 0;
}
