/* The fused L1 norm kernel alone (kvs_policy_value_norms_fused, ABI 8) against the sgemm path it replaces
 * (kvs_policy_value_norms, 256-row tiles) and the sgemm probe (SgemmProbeBench's 2048^3 sgemm, 17.18 GFLOP, OpenBLAS's
 * default threads), at a geometry given on the command line (Llama-3-8B: 4096 128). Decodes the masks
 * (kvs_policy_l1_chain_masks), checks every row's fused norm bit for bit against the sgemm path, then runs `rounds`
 * rounds of the three in rotating order and prints medians of wall and process-CPU time and GFLOP per CPU-second.
 * Usage: fused_norms modelDim headDim rows heads rounds
 * Links libkvslab.so directly (see README.md for the build line). */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int32_t kvs_policy_l1_chain_masks(int32_t modelDim, int32_t headDim, int32_t tile, uint8_t *masks);
int32_t kvs_policy_value_norms_fused(const float *values, int32_t n, int32_t headDim, const float *wo,
                                     int32_t modelDim, int64_t woRowStride, int64_t woHeadStride, int32_t h0,
                                     int32_t g, const int32_t *kindEnds, const uint8_t *masks, float *out,
                                     float *scratch);
int32_t kvs_policy_value_norms(const float *values, int32_t n, int32_t headDim, const float *wo, int32_t modelDim,
                               int64_t woRowStride, int64_t woHeadStride, int32_t h0, int32_t g, float *out,
                               float *scratch, int32_t tile);

static unsigned seed = 1;
static float rnd1(void) { seed = seed * 1103515245u + 12345u; return ((int) (seed >> 9) % 2001 - 1000) / 997.0f; }
static int kind(int p, int m) { /* RowPacking.kind */
    int full = m / 12 * 12;
    if (p < full) return p % 12 < 6 ? 0 : 1;
    int q = p - full, r = m - full;
    if (r >= 8 && q < 8) return 3;
    if (r < 8 && r >= 4 && q < 4) return 2;
    return 1;
}
static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(const double *) a, y = *(const double *) b; return x < y ? -1 : x > y; }
static double median(double *v, int n) { qsort(v, n, sizeof(double), cmpd); return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; }

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: fused_norms modelDim headDim rows heads rounds\n"); return 2; }
    const int M = atoi(argv[1]), D = atoi(argv[2]), n = atoi(argv[3]), G = atoi(argv[4]);
    int rounds = atoi(argv[5]);
    uint8_t *masks = malloc((size_t) 4 * M);
    int rc = kvs_policy_l1_chain_masks(M, D, 256, masks);
    printf("masks: rc %d; outputs with two chains per kind (A B Q4 Q8):", rc);
    for (int q = 0; q < 4 && rc == 0; q++) { int c = 0; for (int k = 0; k < M; k++) c += masks[(size_t) q * M + k]; printf(" %d", c); }
    printf("\n");
    if (rc != 0) return 1;
    float *W = malloc((size_t) G * M * D * 4); /* head-major, as OutputProjectionWeights uploads it */
    for (size_t i = 0; i < (size_t) G * M * D; i++) W[i] = rnd1() * 0.05f;
    float *V = malloc((size_t) n * D * 4);
    for (size_t i = 0; i < (size_t) n * D; i++) V[i] = rnd1() * (1 + (i / D) % 5);
    float *ref = malloc((size_t) G * n * 4), *scr = aligned_alloc(64, (size_t) 256 * M * 4);
    /* the rows kind by kind, each kind padded to 16, as PolicyKernels lays them out */
    int cnt[4] = {0}, ends[4], pos[4], at = 0, *kd = malloc(sizeof(int) * n);
    for (int r = 0; r < n; r++) { int t0 = r / 256 * 256, m = n - t0 < 256 ? n - t0 : 256; kd[r] = kind(r - t0, m); cnt[kd[r]]++; }
    for (int q = 0; q < 4; q++) { pos[q] = at; at += (cnt[q] + 15) / 16 * 16; ends[q] = at; }
    const int N = at;
    float *P = calloc((size_t) N * D, 4);
    int *src = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) src[i] = -1;
    for (int r = 0; r < n; r++) { int p = pos[kd[r]]++; src[p] = r; memcpy(P + (size_t) p * D, V + (size_t) r * D, D * 4); }
    float *out = malloc((size_t) G * N * 4), *fs = aligned_alloc(64, (size_t) (4 * D * 16 + 8) * 4); /* room for up to 4 groups */
    kvs_policy_value_norms(V, n, D, W, M, D, (int64_t) M * D, 0, G, ref, scr, n < 256 ? n : 256);
    kvs_policy_value_norms_fused(P, N, D, W, M, D, (int64_t) M * D, 0, G, ends, masks, out, fs);
    long bad = 0;
    for (int g = 0; g < G; g++)
        for (int p = 0; p < N; p++)
            if (src[p] >= 0 && memcmp(&out[(size_t) g * N + p], &ref[(size_t) g * n + src[p]], 4)) bad++;
    printf("rows %d (A %d, B %d, Q4 %d, Q8 %d) x %d heads: %ld norms differ from the sgemm path's bits\n", n, cnt[0],
           cnt[1], cnt[2], cnt[3], G, bad);
    /* the pool's size follows OpenBLAS's thread count: one thread must give the same bytes */
    float *one = malloc((size_t) G * N * 4);
    const int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    kvs_policy_value_norms_fused(P, N, D, W, M, D, (int64_t) M * D, 0, G, ends, masks, one, fs);
    openblas_set_num_threads(threads);
    printf("fused with 1 thread vs %d: %s\n", threads, memcmp(one, out, (size_t) G * N * 4) ? "DIFFERENT" : "same bytes");
    const int S = 2048;
    float *a = malloc((size_t) S * S * 4), *b = malloc((size_t) S * S * 4), *c = malloc((size_t) S * S * 4);
    for (size_t i = 0; i < (size_t) S * S; i++) { a[i] = rnd1(); b[i] = rnd1(); }
    double wall[3][64], cpu[3][64];
    const double flops[3] = {2.0 * n * M * D * G, 2.0 * n * M * D * G, 2.0 * S * S * S};
    const char *names[3] = {"sgemm path (256-row tiles + reduction)", "fused", "sgemm probe 2048^3"};
    if (rounds > 64) rounds = 64;
    for (int it = 0; it < rounds; it++) {
        for (int o = 0; o < 3; o++) {
            const int x = (o + it) % 3;
            const double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            if (x == 0) kvs_policy_value_norms(V, n, D, W, M, D, (int64_t) M * D, 0, G, ref, scr, 256);
            else if (x == 1) kvs_policy_value_norms_fused(P, N, D, W, M, D, (int64_t) M * D, 0, G, ends, masks, out, fs);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, S, S, 1.0f, a, S, b, S, 0.0f, c, S);
            wall[x][it] = now(CLOCK_MONOTONIC) - w0;
            cpu[x][it] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        }
    }
    double cm[3];
    for (int x = 0; x < 3; x++) {
        const double wm = median(wall[x], rounds);
        cm[x] = median(cpu[x], rounds);
        printf("%-40s wall %8.1f ms  cpu %8.1f ms  %6.1f GFLOP/s wall  %6.1f GFLOP per CPU-second\n", names[x], wm * 1e3,
               cm[x] * 1e3, flops[x] / wm / 1e9, flops[x] / cm[x] / 1e9);
    }
    printf("per CPU-second vs the probe: sgemm path %.3f, fused %.3f; fused / sgemm path CPU %.3f\n",
           flops[0] / cm[0] / (flops[2] / cm[2]), flops[1] / cm[1] / (flops[2] / cm[2]), cm[1] / cm[0]);
    return 0;
}
