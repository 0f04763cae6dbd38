/* A/B driver (ABI 4: K and V of the same dtype, "3i" sets the integer-query flag on K, "3v" the integer-value flag on V): configs "lib.so:shift[:tpb]" timed alternately (rotating order) in one process. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

typedef int32_t (*decode_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, const float*, const int64_t*,
                             const int64_t*, const int64_t*, const int64_t*, float, float*, float*, int32_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static int64_t rowbytes(int dt, int D) { return dt == 0 ? 4 * D : dt <= 2 ? 2 * D : dt == 3 ? D / 32 * 34 : D / 32 * 18; }

static double maxrel(const float* a, const float* b, int n) {
    double m = 0, d = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i] < 0 ? -a[i] : a[i], e = a[i] - b[i];
        if (x > m) m = x;
        if (e < 0) e = -e;
        if (e > d) d = e;
    }
    return d / (m > 1 ? m : 1);
}

typedef struct { decode_fn f; int64_t *kb, *vb; float* out; double* t; const char* name; } cfg;

int main(int argc, char** argv) {
    if (argc < 6) { fprintf(stderr, "drv2 dtype ctx threads reps steps lib:shift ...\n"); return 1; }
    /* "3i" / "4i": K with KVS_QUERY_Q8_0 (the integer-query path); a "v": V with KVS_VALUE_INT8 */
    int kflag = strchr(argv[1], 'i') != NULL ? 0x100 : 0, vflag = strchr(argv[1], 'v') != NULL ? 0x200 : 0;
    int dtype = atoi(argv[1]), ctx = atoi(argv[2]), thr = atoi(argv[3]), reps = atoi(argv[4]), steps = atoi(argv[5]);
    int nc = argc - 6;
    cfg c[8];
    const int n_kv = 8, G = 4, D = 128, br = 32;
    int64_t rb = rowbytes(dtype, D), nb = (ctx + br - 1) / br;
    size_t bbytes = (size_t)br * rb, total = bbytes * 2 * nb * n_kv;
    int64_t off[9], len[8];
    for (int h = 0; h <= n_kv; h++) off[h] = (int64_t)h * nb;
    for (int h = 0; h < n_kv; h++) len[h] = ctx;
    float* q = malloc(4 * n_kv * G * D);
    srand(1);
    for (int i = 0; i < n_kv * G * D; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    char* proto = malloc(total);
    for (size_t i = 0; i < total; i++) proto[i] = (char)(rand() & 0x3f);
    if (dtype == 0) for (size_t i = 0; i < total / 4; i++) ((float*)proto)[i] = (rand() / (float)RAND_MAX) - 0.5f;
    if (dtype == 1) for (size_t i = 0; i < total / 2; i++) ((uint16_t*)proto)[i] = _cvtss_sh((rand() / (float)RAND_MAX) - 0.5f, 0);
    for (int i = 0; i < nc; i++) {
        char spec[512]; strcpy(spec, argv[6 + i]);
        char* colon = strchr(spec, ':'); int shift = 0;
        if (colon) { *colon = 0; shift = atoi(colon + 1); }
        void* h = dlopen(spec, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        c[i].f = (decode_fn)dlsym(h, "kvs_attn_decode");
        c[i].name = argv[6 + i];
        static char* arenas[4097];
        if (arenas[shift] == NULL) { arenas[shift] = (char*)aligned_alloc(4096, (total + 8191) / 4096 * 4096) + shift; memcpy(arenas[shift], proto, total); }
        char* arena = arenas[shift];
        c[i].kb = malloc(8 * nb * n_kv); c[i].vb = malloc(8 * nb * n_kv);
        size_t pos = 0;
        for (int64_t b = 0; b < nb; b++)
            for (int hh = 0; hh < n_kv; hh++) {
                c[i].kb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
                c[i].vb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
            }
        c[i].out = malloc(4 * n_kv * G * D);
        c[i].t = malloc(8 * reps);
    }
    for (int w = 0; w < 2; w++) for (int i = 0; i < nc; i++) c[i].f(n_kv, G, D, dtype | kflag, dtype | vflag, br, q, c[i].kb, c[i].vb, off, len, 0.088f, c[i].out, NULL, thr);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < nc; k++) {
            int i = (k + r) % nc;
            c[i].f(n_kv, G, D, dtype | kflag, dtype | vflag, br, q, c[i].kb, c[i].vb, off, len, 0.088f, c[i].out, NULL, thr); /* untimed: caches warm */
            double t0 = now();
            for (int s = 0; s < steps; s++) c[i].f(n_kv, G, D, dtype | kflag, dtype | vflag, br, q, c[i].kb, c[i].vb, off, len, 0.088f, c[i].out, NULL, thr);
            c[i].t[r] = (now() - t0) / steps;
        }
    double gb = 2.0 * ctx * n_kv * rb / 1e9, m0 = 0;
    for (int i = 0; i < nc; i++) {
        qsort(c[i].t, reps, 8, cmpd);
        double m = c[i].t[reps / 2];
        if (i == 0) m0 = m;
        printf("dtype=%d ctx=%d thr=%d %-22s median %8.1f us  %5.2f GB/s  ratio %.3f  p25-p75 %.0f-%.0f  bitwise_vs_first=%d  maxdiff/maxabs %.2e\n", dtype, ctx, thr, c[i].name,
               m * 1e6, gb / m, m / m0, c[i].t[reps / 4] * 1e6, c[i].t[3 * reps / 4] * 1e6, memcmp(c[i].out, c[0].out, 4 * n_kv * G * D) == 0,
               maxrel(c[0].out, c[i].out, n_kv * G * D));
    }
    return 0;
}
