/* Decode of several dtypes with one build, alternated in one process: ms per step, ratio to the first dtype,
 * GB/s of stored bytes and bytes per cycle (at the clock given, GHz). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
typedef int32_t (*decode_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, const float*, const int64_t*,
                             const int64_t*, const int64_t*, const int64_t*, float, float*, float*, int32_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static int64_t rowbytes(int dt, int D) { return dt == 0 ? 4 * D : dt <= 2 ? 2 * D : dt == 3 ? D / 32 * 34 : D / 32 * 18; }
int main(int argc, char** argv) {
    if (argc < 8) { fprintf(stderr, "qdrv lib ctx threads reps steps ghz dtype...\n"); return 1; }
    void* lh = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lh) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    decode_fn f = (decode_fn)dlsym(lh, "kvs_attn_decode");
    int ctx = atoi(argv[2]), thr = atoi(argv[3]), reps = atoi(argv[4]), steps = atoi(argv[5]);
    double ghz = atof(argv[6]);
    int nd = argc - 7, dts[8];
    const int n_kv = 8, G = 4, D = 128, br = 32;
    int64_t nb = (ctx + br - 1) / br, *kb[8], *vb[8], off[9], len[8];
    for (int h = 0; h <= n_kv; h++) off[h] = (int64_t)h * nb;
    for (int h = 0; h < n_kv; h++) len[h] = ctx;
    float* q = malloc(4 * n_kv * G * D), *out = malloc(4 * n_kv * G * D);
    srand(1);
    for (int i = 0; i < n_kv * G * D; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    double* t[8];
    for (int d = 0; d < nd; d++) {
        int dt = dts[d] = atoi(argv[7 + d]);
        int64_t rb = rowbytes(dt, D);
        size_t bb = (size_t)br * rb, total = bb * 2 * nb * n_kv;
        char* a = aligned_alloc(4096, (total + 4095) / 4096 * 4096);
        for (size_t i = 0; i < total; i++) a[i] = (char)(rand() & 0x3f);
        if (dt == 0) for (size_t i = 0; i < total / 4; i++) ((float*)a)[i] = rand() / (float)RAND_MAX - 0.5f;
        if (dt == 1) for (size_t i = 0; i < total / 2; i++) ((uint16_t*)a)[i] = _cvtss_sh(rand() / (float)RAND_MAX - 0.5f, 0);
        kb[d] = malloc(8 * nb * n_kv); vb[d] = malloc(8 * nb * n_kv);
        size_t pos = 0;
        for (int64_t b = 0; b < nb; b++) for (int h = 0; h < n_kv; h++) {
            kb[d][h * nb + b] = (int64_t)(intptr_t)(a + pos); pos += bb;
            vb[d][h * nb + b] = (int64_t)(intptr_t)(a + pos); pos += bb;
        }
        t[d] = malloc(8 * reps);
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < nd; k++) {
            int d = (k + r) % nd;
            f(n_kv, G, D, dts[d], br, q, kb[d], vb[d], off, len, 0.088f, out, NULL, thr);
            double t0 = now();
            for (int s = 0; s < steps; s++) f(n_kv, G, D, dts[d], br, q, kb[d], vb[d], off, len, 0.088f, out, NULL, thr);
            t[d][r] = (now() - t0) / steps;
        }
    double m0 = 0;
    for (int d = 0; d < nd; d++) {
        qsort(t[d], reps, 8, cmpd);
        double m = t[d][reps / 2];
        if (d == 0) m0 = m;
        double bytes = 2.0 * ctx * n_kv * rowbytes(dts[d], D);
        printf("ctx=%d thr=%d dtype=%d  %.3f ms/step  time/first %.3f  speed-up %.2fx  %.2f GB/s  %.2f B/cycle/thread at %.1f GHz\n",
               ctx, thr, dts[d], m * 1e3, m / m0, m0 / m, bytes / m / 1e9, bytes / m / (ghz * 1e9) / thr, ghz);
    }
    return 0;
}
