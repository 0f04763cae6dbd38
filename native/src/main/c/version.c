#include "kvslab.h"
/* 2: dtypes q8_0 (3) and q4_0 (4), kvs_row_bytes; batched decode (kvs_attn_decode_batch). 3: both. */
/* 4: K and V dtypes separate (kvs_decode_seq.k_dtype/v_dtype; kvs_attn_decode/prefill take both). */
/* 5: kvs_policy_value_norms and kvs_policy_gram take W_o's row and head strides (a head-major copy is faster). */
/* 6: kvs_append_rows (one token's rows of a layer into their blocks in one call). */
/* 7: kvs_policy_value_norms_paired (the 4-row remainder kernel's arithmetic, for packed L1 norms in taller tiles). */
/* 8: kvs_policy_l1_chain_masks and kvs_policy_value_norms_fused (L1 norms without a product in memory). */
/* 9: kvs_convert_rows (fp32 rows into f16 / bf16 rows, straight into block memory). */
/* 10: kvs_attn_decode_batch takes the batch's q, out and lse as arguments (row s of each); kvs_decode_seq no
 *     longer holds them (40 bytes), so that a binding keeps the caller's memory alive for the call. */
int32_t kvs_abi_version(void) { return 10; }

int64_t kvs_row_bytes(int32_t dtype, int32_t head_dim) {
    if (head_dim <= 0) return -1;
    switch (dtype) {
    case KVS_DTYPE_F32: return (int64_t)head_dim * 4;
    case KVS_DTYPE_F16:
    case KVS_DTYPE_BF16: return (int64_t)head_dim * 2;
    case KVS_DTYPE_Q8_0:
    case KVS_DTYPE_Q4_0: {
        if (head_dim > 32 && head_dim % 32 != 0) return -1;
        if (dtype == KVS_DTYPE_Q4_0 && head_dim % 2 != 0) return -1;
        int64_t g = head_dim < 32 ? head_dim : 32;
        return head_dim / g * (2 + (dtype == KVS_DTYPE_Q8_0 ? g : g / 2));
    }
    default: return -1;
    }
}
