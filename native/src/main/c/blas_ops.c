/* Matrix products for the reference Llama runner (bench module), a thin layer over OpenBLAS's CBLAS.
 * The Java side (io.kvslab.bench.model.BlasOps) validates every size before calling. */
#include <cblas.h>
#include <stdint.h>

void kvs_blas_matmul_nt(const float *x, const float *w, float *out, int32_t n, int32_t cols, int32_t rows);

/* out[t][i] = sum_j w[i][j] * x[t][j] for t < n: X [n][cols] times W^T, W row-major [rows][cols]. */
void kvs_blas_matmul_nt(const float *x, const float *w, float *out, int32_t n, int32_t cols, int32_t rows) {
    if (n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, out, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, w, cols, 0.0f, out, rows);
    }
}
