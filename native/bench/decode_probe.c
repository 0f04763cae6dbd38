/* Decode attention against the read-bandwidth probe, interleaved in one process (issue #13's "decode vs read probe"
 * goal): every round runs the probe (kvs_read_bandwidth_probe of the first library over a 1 GiB buffer, as
 * BandwidthProbeBench does), then each config's decode, rotating the decode order; medians per config and the
 * ratio of medians (decode GB/s / probe GB/s). A config is "lib.so[:tpb[:flags]]": tokens per block (default 32)
 * and flags h = the KV arena madvise(MADV_HUGEPAGE)d (transparent huge pages; the machine's THP mode is
 * "madvise", so without it a 16 KiB block costs 4 page translations), p = the probe buffer likewise (for the
 * "probe with huge pages" row, use a config's p with a separate run), and one block placement (Llama-3-8B geometry,
 * one page-aligned arena):
 *   (none) blocks in order (block, head), each head's K and V block side by side;
 *   c      each head's blocks contiguous (all its K blocks in order, then all its V blocks);
 *   t      as the store places a sequence appended token by token: every head's next block is allocated at the
 *          same moment, 2 x n_kv = 16 blocks per append from the allocator's per-thread stripe (REFILL), so two
 *          block boundaries share 32 consecutive slots, the first ascending (K h at a + h, V h at a + 8 + h), the
 *          next descending (K h at a + 31 - h, V h at a + 23 - h): a head's consecutive blocks 3 and 29 apart;
 *   k      as a 1024-row append places them (DecodeAttentionBench's fill): per 1024 rows, every head's K blocks
 *          head after head (32 each at 32 rows per block), then every head's V blocks.
 * Besides wall-clock medians it prints each config's minimum, its process CPU time per call (all threads: time the
 * loaded machine takes the cores away is not counted, so CPU-time ratios are the steadier A/B) and how much of its
 * arena the kernel really backed with huge pages (THP falls back to 4 KiB pages silently). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <immintrin.h>

typedef int32_t (*decode_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, const float*, const int64_t*,
                             const int64_t*, const int64_t*, const int64_t*, float, float*, float*, int32_t);
typedef double (*probe_fn)(const void*, int64_t, int32_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* process CPU time: all threads' run time, so time a loaded machine takes the core away is not counted */
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static int64_t rowbytes(int dt, int D) { return dt == 0 ? 4 * D : dt <= 2 ? 2 * D : dt == 3 ? D / 32 * 34 : D / 32 * 18; }

static char* map(size_t bytes, int huge) {
    size_t a = 2u << 20, len = (bytes + a - 1) / a * a + a;
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    char* q = (char*)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1)); /* 2 MiB aligned, so whole huge pages fit */
    if (huge && madvise(q, len - a, MADV_HUGEPAGE) != 0) perror("madvise");
    return q;
}

/* kB of [p, p + bytes) backed by transparent huge pages (AnonHugePages of the mappings it overlaps), so a config
 * whose huge pages were refused (fragmented memory: THP falls back to 4 KiB pages silently) shows it */
static long huge_kb(const char* p, size_t bytes) {
    FILE* f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    long kb = 0;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2) { /* a mapping's header line; field lines do not parse */
            in = a < (uintptr_t)p + bytes && b > (uintptr_t)p;
        } else if (in && strncmp(line, "AnonHugePages:", 14) == 0) {
            kb += atol(line + 14);
        }
    }
    fclose(f);
    return kb;
}

typedef struct { decode_fn f; int br; int64_t *kb, *vb, *off, *len; float* out; double *t, *ct; const char* name; char* arena; size_t bytes; } cfg;

int main(int argc, char** argv) {
    if (argc < 7) { fprintf(stderr, "decode_probe dtype ctx threads rounds steps [P]lib[:tpb[:h]] ...\n"); return 1; }
    int dtype = atoi(argv[1]), ctx = atoi(argv[2]), thr = atoi(argv[3]), reps = atoi(argv[4]), steps = atoi(argv[5]);
    int nc = argc - 6, probe_huge = 0;
    cfg c[8];
    const int n_kv = 8, G = 4, D = 128;
    int64_t rb = rowbytes(dtype, D);
    float* q = malloc(4 * n_kv * G * D);
    srand(1);
    for (int i = 0; i < n_kv * G * D; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    probe_fn probe = NULL;
    for (int i = 0; i < nc; i++) {
        char spec[512];
        strcpy(spec, argv[6 + i]);
        char* colon = strchr(spec, ':');
        int br = 32, huge = 0, contig = 0, tok = 0, chk = 0;
        if (colon) {
            *colon = 0;
            br = atoi(colon + 1);
            char* c2 = strchr(colon + 1, ':');
            if (c2) { huge = strchr(c2, 'h') != NULL; contig = strchr(c2, 'c') != NULL; tok = strchr(c2, 't') != NULL; chk = strchr(c2, 'k') != NULL; probe_huge |= strchr(c2, 'p') != NULL; }
        }
        void* h = dlopen(spec, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        c[i].f = (decode_fn)dlsym(h, "kvs_attn_decode");
        if (probe == NULL) probe = (probe_fn)dlsym(h, "kvs_read_bandwidth_probe");
        c[i].name = argv[6 + i];
        c[i].br = br;
        int64_t nb = (ctx + br - 1) / br;
        size_t bbytes = (size_t)br * rb, total = bbytes * 2 * nb * n_kv;
        char* arena = map(total, huge);
        c[i].arena = arena;
        c[i].bytes = total;
        c[i].kb = malloc(8 * nb * n_kv);
        c[i].vb = malloc(8 * nb * n_kv);
        size_t pos = 0;
        if (tok) { /* as the store's token-by-token appends place them (REFILL 16 = 2 n_kv): pairs of boundaries share 4 n_kv
                      blocks; even b: K h at a + h, V h at a + n_kv + h; odd b: K h at a + 4n_kv - 1 - h, V h at a + 3n_kv - 1 - h */
            for (int64_t b = 0; b < nb; b++)
                for (int hh = 0; hh < n_kv; hh++) {
                    int64_t a = b / 2 * 4 * n_kv, kslot, vslot;
                    if (b % 2 == 0) { kslot = a + hh; vslot = a + n_kv + hh; }
                    else { kslot = a + 4 * n_kv - 1 - hh; vslot = a + 3 * n_kv - 1 - hh; }
                    c[i].kb[hh * nb + b] = (int64_t)(intptr_t)(arena + kslot * bbytes);
                    c[i].vb[hh * nb + b] = (int64_t)(intptr_t)(arena + vslot * bbytes);
                }
        } else if (chk) { /* 1024-row appends: per chunk all K blocks head after head, then all V blocks */
            int64_t per = 1024 / br;
            for (int64_t b = 0; b < nb; b++)
                for (int hh = 0; hh < n_kv; hh++) {
                    int64_t a = b / per * 2 * n_kv * per, r = b % per;
                    c[i].kb[hh * nb + b] = (int64_t)(intptr_t)(arena + (a + hh * per + r) * bbytes);
                    c[i].vb[hh * nb + b] = (int64_t)(intptr_t)(arena + (a + n_kv * per + hh * per + r) * bbytes);
                }
        } else if (contig) { /* every head's K blocks in order, then its V blocks */
            for (int hh = 0; hh < n_kv; hh++) {
                for (int64_t b = 0; b < nb; b++) { c[i].kb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes; }
                for (int64_t b = 0; b < nb; b++) { c[i].vb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes; }
            }
        } else
        for (int64_t b = 0; b < nb; b++)
            for (int hh = 0; hh < n_kv; hh++) {
                c[i].kb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
                c[i].vb[hh * nb + b] = (int64_t)(intptr_t)(arena + pos); pos += bbytes;
            }
        /* row r of head hh gets value pattern f(hh, r, d), so outputs are comparable across block sizes */
        for (int kv = 0; kv < 2; kv++)
            for (int hh = 0; hh < n_kv; hh++)
                for (int64_t r = 0; r < ctx; r++) {
                    int64_t* tab = kv == 0 ? c[i].kb : c[i].vb;
                    char* row = (char*)(intptr_t)tab[hh * nb + r / br] + (r % br) * rb;
                    uint32_t s = (uint32_t)(((hh * 2 + kv) * 1000003u) ^ (uint32_t)r * 2654435761u);
                    for (int d = 0; d < D; d++) {
                        s = s * 1664525u + 1013904223u;
                        float x = (float)(s >> 8) / 16777216.0f - 0.5f;
                        if (dtype == 0) ((float*)row)[d] = x;
                        else if (dtype == 1) ((uint16_t*)row)[d] = _cvtss_sh(x, 0);
                        else row[d] = (char)(s >> 24 & 0x3f); /* other dtypes: bytes only, timing */
                    }
                }
        c[i].off = malloc(8 * (n_kv + 1));
        c[i].len = malloc(8 * n_kv);
        for (int hh = 0; hh <= n_kv; hh++) c[i].off[hh] = (int64_t)hh * nb;
        for (int hh = 0; hh < n_kv; hh++) c[i].len[hh] = ctx;
        c[i].out = malloc(4 * n_kv * G * D);
        c[i].t = malloc(8 * reps);
        c[i].ct = malloc(8 * reps);
    }
    const size_t pbytes = (size_t)1 << 30;
    char* pbuf = map(pbytes, probe_huge);
    memset(pbuf, 1, pbytes);
    double* pt = malloc(8 * reps);
    for (int w = 0; w < 2; w++) {
        probe(pbuf, (int64_t)pbytes, thr);
        for (int i = 0; i < nc; i++) c[i].f(n_kv, G, D, dtype, dtype, c[i].br, q, c[i].kb, c[i].vb, c[i].off, c[i].len, 0.088f, c[i].out, NULL, thr);
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int s = 0; s < 3; s++) probe(pbuf, (int64_t)pbytes, thr);
        pt[r] = (now() - t0) / 3;
        for (int k = 0; k < nc; k++) {
            int i = (k + r) % nc;
            t0 = now();
            double c0 = cpu();
            for (int s = 0; s < steps; s++)
                c[i].f(n_kv, G, D, dtype, dtype, c[i].br, q, c[i].kb, c[i].vb, c[i].off, c[i].len, 0.088f, c[i].out, NULL, thr);
            c[i].t[r] = (now() - t0) / steps;
            c[i].ct[r] = (cpu() - c0) / steps;
        }
    }
    qsort(pt, reps, 8, cmpd);
    double pgb = pbytes / 1e9 / pt[reps / 2];
    printf("probe%s thr=%d median %.2f ms/GiB %.2f GB/s p25-p75 %.2f-%.2f\n", probe_huge ? "(THP)" : "", thr,
           pt[reps / 2] * 1e3, pgb, pbytes / 1e9 / pt[3 * reps / 4], pbytes / 1e9 / pt[reps / 4]);
    double gb = 2.0 * ctx * n_kv * rb / 1e9, m0 = 0, cm0 = 0;
    for (int i = 0; i < nc; i++) {
        qsort(c[i].t, reps, 8, cmpd);
        qsort(c[i].ct, reps, 8, cmpd);
        double m = c[i].t[reps / 2], cm = c[i].ct[reps / 2];
        if (i == 0) { m0 = m; cm0 = cm; }
        double diff = 0, mx = 0;
        for (int k = 0; k < n_kv * G * D; k++) {
            double e = c[i].out[k] - c[0].out[k], a = c[0].out[k];
            if (e < 0) e = -e;
            if (a < 0) a = -a;
            if (e > diff) diff = e;
            if (a > mx) mx = a;
        }
        printf("dtype=%d ctx=%d thr=%d %-34s median %8.1f us %6.2f GB/s vs probe %.3f  time vs first %.3f  p25-p75 %.0f-%.0f  bitwise_vs_first=%d maxdiff/maxabs %.1e\n",
               dtype, ctx, thr, c[i].name, m * 1e6, gb / m, gb / m / pgb, m / m0, c[i].t[reps / 4] * 1e6,
               c[i].t[3 * reps / 4] * 1e6, memcmp(c[i].out, c[0].out, 4 * n_kv * G * D) == 0, diff / (mx > 0 ? mx : 1));
        printf("    %-34s KV %zu MiB, %ld MiB in huge pages\n", c[i].name, c[i].bytes >> 20, huge_kb(c[i].arena, c[i].bytes) >> 10);
        printf("    %-34s min %8.1f us (vs first's min %.3f)  cpu median %8.1f us (vs first %.3f)\n", c[i].name,
               c[i].t[0] * 1e6, c[i].t[0] / c[0].t[0], cm * 1e6, cm / cm0);
    }
    return 0;
}
