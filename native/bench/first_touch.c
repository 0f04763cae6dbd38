/* First touch of 64 slabs of 16 MiB (1 GiB), 2 MiB-aligned, with and without madvise(MADV_HUGEPAGE), alternating order per round: what huge pages cost (or save) the first write into fresh slab memory. gcc -O2 -o /tmp/first_touch native/bench/first_touch.c && /tmp/first_touch 6 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
    size_t slab = 16u << 20, n = 64; int rounds = atoi(argv[1]);
    for (int r = 0; r < rounds; r++) for (int huge = 0; huge < 2; huge++) {
        int h = (r & 1) ? !huge : huge;
        double t0 = now();
        char* p[64];
        for (size_t i = 0; i < n; i++) {
            char* m = mmap(NULL, slab + (2u << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            char* a = (char*)(((uintptr_t)m + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
            if (h) madvise(a, slab, MADV_HUGEPAGE);
            for (size_t o = 0; o < slab; o += 4096) a[o] = 1; /* first touch of every page, as block writes do */
            p[i] = m;
        }
        double t1 = now();
        for (size_t i = 0; i < n; i++) munmap(p[i], slab + (2u << 20));
        printf("round %d %s first touch of 1 GiB: %.0f ms\n", r, h ? "THP " : "4KiB", (t1 - t0) * 1e3);
    }
}
