/* Decode of several dtypes with one build, alternated in one process: ms per step, ratio to the first dtype,
 * GB/s of stored bytes and bytes per cycle (at the clock given, GHz). ABI 4 (k_dtype, v_dtype).
 * A dtype argument is one code for K and V ("3") or a K/V pair ("3/4"). Every dtype's rows hold the same
 * values (random in [-0.5, 0.5), quantised with ggml's rounding where the dtype is quantised), so the outputs
 * are comparable: each line also gives the largest difference from the first dtype's output. A K code followed
 * by "i" ("3i", "4i/4") sets KVS_QUERY_Q8_0: the integer-query score path of q8_0 / q4_0 keys; a "v" anywhere
 * ("3iv", "4/4v") sets KVS_VALUE_INT8 on the V code: the integer value path of q8_0 / q4_0 values. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
typedef int32_t (*decode_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, const float*, const int64_t*,
                             const int64_t*, const int64_t*, const int64_t*, float, float*, float*, int32_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* CPU time of the whole process (the caller and the pool's workers): on a shared machine the time the kernel
 * really ran, without the time other processes held the cores */
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static int64_t rowbytes(int dt, int D) { return dt == 0 ? 4 * D : dt <= 2 ? 2 * D : dt == 3 ? D / 32 * 34 : D / 32 * 18; }
static const char* NAMES[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};

/* One row of D values v in dtype dt at dst (ggml's quantisation: d = amax/127 resp. max/-8). */
static void store_row(int dt, int D, const float* v, char* dst) {
    if (dt == 0) { memcpy(dst, v, 4 * D); return; }
    if (dt == 1) { for (int i = 0; i < D; i++) ((uint16_t*)dst)[i] = _cvtss_sh(v[i], 0); return; }
    if (dt == 2) { for (int i = 0; i < D; i++) { uint32_t u; memcpy(&u, &v[i], 4); ((uint16_t*)dst)[i] = (uint16_t)(u >> 16); } return; }
    for (int g = 0; g < D / 32; g++) {
        const float* x = v + 32 * g;
        float amax = 0, mx = 0;
        for (int i = 0; i < 32; i++) if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); mx = x[i]; }
        float d = dt == 3 ? amax / 127 : mx / -8;
        float id = d != 0 ? 1 / d : 0;
        uint16_t h = _cvtss_sh(d, 0);
        if (dt == 3) {
            char* o = dst + 34 * g;
            memcpy(o, &h, 2);
            for (int i = 0; i < 32; i++) o[2 + i] = (int8_t)lrintf(x[i] * id);
        } else {
            char* o = dst + 18 * g;
            memcpy(o, &h, 2);
            for (int i = 0; i < 16; i++) {
                int a = (int)(x[i] * id + 8.5f), b = (int)(x[i + 16] * id + 8.5f);
                a = a > 15 ? 15 : a; b = b > 15 ? 15 : b;
                o[2 + i] = (char)(a | b << 4);
            }
        }
    }
}

int main(int argc, char** argv) {
    if (argc < 8) { fprintf(stderr, "decode_dtypes lib ctx threads reps steps ghz dtype|kdtype/vdtype ...\n"); return 1; }
    void* lh = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lh) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    decode_fn f = (decode_fn)dlsym(lh, "kvs_attn_decode");
    int ctx = atoi(argv[2]), thr = atoi(argv[3]), reps = atoi(argv[4]), steps = atoi(argv[5]);
    double ghz = atof(argv[6]);
    int nd = argc - 7, kd[12], vd[12];
    if (nd > 12) { fprintf(stderr, "at most 12 dtypes\n"); return 1; }
    const int n_kv = 8, G = 4, D = 128, br = 32;
    int64_t nb = (ctx + br - 1) / br, *kb[12], *vb[12], off[9], len[8];
    for (int h = 0; h <= n_kv; h++) off[h] = (int64_t)h * nb;
    for (int h = 0; h < n_kv; h++) len[h] = ctx;
    float* q = malloc(4 * n_kv * G * D), *out[12];
    srand(1);
    for (int i = 0; i < n_kv * G * D; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    double* t[12], *c[12];
    float row[128];
    for (int d = 0; d < nd; d++) {
        char* slash = strchr(argv[7 + d], '/');
        kd[d] = atoi(argv[7 + d]);
        vd[d] = slash != NULL ? atoi(slash + 1) : kd[d];
        if (strchr(argv[7 + d], 'i') != NULL && (slash == NULL || strchr(argv[7 + d], 'i') < slash)) kd[d] |= 0x100;
        if (strchr(argv[7 + d], 'v') != NULL) vd[d] |= 0x200;
        int64_t krb = rowbytes(kd[d] & 0xff, D), vrb = rowbytes(vd[d] & 0xff, D);
        size_t kbb = (size_t)br * krb, vbb = (size_t)br * vrb, total = (kbb + vbb) * nb * n_kv;
        char* a = aligned_alloc(4096, (total + 4095) / 4096 * 4096);
        kb[d] = malloc(8 * nb * n_kv); vb[d] = malloc(8 * nb * n_kv);
        size_t pos = 0;
        srand(2); /* the same values for every dtype */
        for (int64_t b = 0; b < nb; b++) for (int h = 0; h < n_kv; h++) { /* K and V blocks alternate, as in the slabs */
            kb[d][h * nb + b] = (int64_t)(intptr_t)(a + pos);
            for (int r = 0; r < br; r++) {
                for (int i = 0; i < D; i++) row[i] = rand() / (float)RAND_MAX - 0.5f;
                store_row(kd[d] & 0xff, D, row, a + pos + r * krb);
            }
            pos += kbb;
            vb[d][h * nb + b] = (int64_t)(intptr_t)(a + pos);
            for (int r = 0; r < br; r++) {
                for (int i = 0; i < D; i++) row[i] = rand() / (float)RAND_MAX - 0.5f;
                store_row(vd[d] & 0xff, D, row, a + pos + r * vrb);
            }
            pos += vbb;
        }
        t[d] = malloc(8 * reps);
        c[d] = malloc(8 * reps);
        out[d] = malloc(4 * n_kv * G * D);
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < nd; k++) {
            int d = (k + r) % nd;
            f(n_kv, G, D, kd[d], vd[d], br, q, kb[d], vb[d], off, len, 0.088f, out[d], NULL, thr);
            double t0 = now(), c0 = cpu();
            for (int s = 0; s < steps; s++) f(n_kv, G, D, kd[d], vd[d], br, q, kb[d], vb[d], off, len, 0.088f, out[d], NULL, thr);
            t[d][r] = (now() - t0) / steps;
            c[d][r] = (cpu() - c0) / steps;
        }
    double m0 = 0, cm0 = 0;
    for (int d = 0; d < nd; d++) {
        qsort(t[d], reps, 8, cmpd);
        qsort(c[d], reps, 8, cmpd);
        double m = t[d][reps / 2], cm = c[d][reps / 2];
        if (d == 0) { m0 = m; cm0 = cm; }
        double bytes = (double)ctx * n_kv * (rowbytes(kd[d] & 0xff, D) + rowbytes(vd[d] & 0xff, D)), diff = 0, mag = 0;
        for (int i = 0; i < n_kv * G * D; i++) {
            diff = fmax(diff, fabs((double)out[d][i] - out[0][i]));
            mag = fmax(mag, fabs((double)out[0][i]));
        }
        char name[24];
        snprintf(name, sizeof name, (kd[d] & 0xff) == (vd[d] & 0xff) ? "%s%s%s" : "%s%s/%s%s", NAMES[kd[d] & 0xff],
                 kd[d] & 0x100 ? "+iq" : "", (kd[d] & 0xff) == (vd[d] & 0xff) ? (vd[d] & 0x200 ? "+iv" : "")
                 : NAMES[vd[d] & 0xff], vd[d] & 0x200 ? "+iv" : "");
        /* wall: median ms per step, its quartiles, speed-up over the first dtype, GB/s of stored K+V bytes;
         * cpu: the same from CPU time (all threads), and bytes per cycle per core at the clock given */
        printf("ctx=%d thr=%d %-9s wall %8.3f ms (p25 %.3f p75 %.3f) x%.2f %6.2f GB/s | cpu %8.3f ms x%.2f %6.2f GB/s "
               "%.2f B/cycle/core @%.2fGHz | maxdiff/max|out0| %.1e\n",
               ctx, thr, name, m * 1e3, t[d][reps / 4] * 1e3, t[d][3 * reps / 4] * 1e3, m0 / m, bytes / m / 1e9,
               cm * 1e3, cm0 / cm, bytes / cm / 1e9, bytes / cm / (ghz * 1e9), ghz, diff / mag);
    }
    return 0;
}
