/* kvs_append_rows: one token's K and V rows of every KV head of a layer, copied into their tail slots. */
#include "kvslab.h"

#include <immintrin.h>
#include <string.h>

/*
 * A token-by-token append writes each KV head's row into a different block, and between two appends to one layer
 * every other layer is appended: the destination lines are cold, so every ordinary store is a write-allocate miss
 * (the line is read from memory before it is overwritten), taken one row after the other. A row that covers whole
 * 64-byte lines is written with non-temporal stores instead: nothing is read, the lines go to memory as they fill.
 * Nothing reads an appended row again soon (the next attention over the sequence reads thousands of rows from
 * memory anyway), so leaving it out of the cache costs nothing. Other rows take memcpy.
 */
static void copy_row(uint8_t* dst, const uint8_t* src, int64_t bytes) {
    if ((((uintptr_t)dst | (uintptr_t)bytes) & 63) == 0) {
        for (int64_t i = 0; i < bytes; i += 64) {
            __m256i a = _mm256_loadu_si256((const __m256i*)(src + i));
            __m256i b = _mm256_loadu_si256((const __m256i*)(src + i + 32));
            _mm256_stream_si256((__m256i*)(dst + i), a);
            _mm256_stream_si256((__m256i*)(dst + i + 32), b);
        }
    } else {
        memcpy(dst, src, (size_t)bytes);
    }
}

int32_t kvs_append_rows(const uint8_t* k_src, const uint8_t* v_src, const int64_t* rows, int32_t heads,
                        int64_t key_row_bytes, int64_t value_row_bytes) {
    if (k_src == NULL || v_src == NULL || rows == NULL || heads < 1 || key_row_bytes < 1 || value_row_bytes < 1) {
        return KVS_ERR_ARGUMENT;
    }
    for (int32_t h = 0; h < heads; h++) {
        const int64_t* r = rows + 4 * (int64_t)h;
        if (r[0] < 0 || r[1] < 0 || r[2] == 0 || r[3] == 0) {
            return KVS_ERR_ARGUMENT;
        }
    }
    for (int32_t h = 0; h < heads; h++) {
        const int64_t* r = rows + 4 * (int64_t)h;
        copy_row((uint8_t*)(uintptr_t)r[2], k_src + r[0], key_row_bytes);
        copy_row((uint8_t*)(uintptr_t)r[3], v_src + r[1], value_row_bytes);
    }
    /* Non-temporal stores are weakly ordered: make them visible before the caller publishes the rows. */
    _mm_sfence();
    return KVS_OK;
}
