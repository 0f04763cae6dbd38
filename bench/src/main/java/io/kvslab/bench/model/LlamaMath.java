package io.kvslab.bench.model;

/**
 * The element-wise numerics of the forward pass, written to round exactly like llama2.c's {@code run.c} compiled
 * without fast-math: float accumulators summed in index order, {@code expf}/{@code sqrtf}/{@code powf}/{@code cosf}/
 * {@code sinf} as the correctly rounded float of the double-precision result. Java never contracts a*b+c into an FMA,
 * nor does gcc for baseline x86-64, so the sums match operation for operation.
 */
final class LlamaMath {
    private LlamaMath() {}

    static float expf(float x) {
        return (float) Math.exp(x);
    }

    /** o = weight * (x / rms(x)), llama2.c's rmsnorm; o may alias x. */
    static void rmsnorm(float[] o, int oOff, float[] x, int xOff, float[] weight, int size, float eps) {
        float ss = 0.0f;
        for (int j = 0; j < size; j++) {
            float v = x[xOff + j];
            ss += v * v;
        }
        ss /= size;
        ss += eps;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < size; j++) {
            o[oOff + j] = weight[j] * (ss * x[xOff + j]);
        }
    }

    /** In-place softmax of x[off .. off+size), llama2.c's order: max, exp and sum, divide. */
    static void softmax(float[] x, int off, int size) {
        float max = x[off];
        for (int i = 1; i < size; i++) {
            if (x[off + i] > max) {
                max = x[off + i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            float e = expf(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        for (int i = 0; i < size; i++) {
            x[off + i] /= sum;
        }
    }

    /**
     * Rotates adjacent pairs (2i, 2i+1) of every head of q (width dim) and k (width kvDim) for one token at
     * {@code pos}: frequency 1/theta^(2i/headSize), angle pos * frequency, all in float as llama2.c computes them.
     */
    static void rope(float[] q, int qOff, float[] k, int kOff, int dim, int kvDim, int headSize, float theta, long pos) {
        float[] cos = new float[headSize];
        float[] sin = new float[headSize];
        ropeAngles(cos, sin, 0, headSize, theta, pos);
        rope(q, qOff, k, kOff, dim, kvDim, headSize, cos, sin, 0);
    }

    /**
     * The cosines and sines {@link #rope} uses at {@code pos}, into {@code cos/sin[off .. off + headSize)}: the pair
     * at {@code i} of any head turns by the angle of index {@code i % headSize}, the same in every layer, so a
     * forward pass computes them once per token rather than per pair, head and layer (the same floats). With an even
     * head size only the even indices are used, and only they are computed.
     */
    static void ropeAngles(float[] cos, float[] sin, int off, int headSize, float theta, long pos) {
        float p = (float) pos;
        int step = headSize % 2 == 0 ? 2 : 1;
        for (int headDim = 0; headDim < headSize; headDim += step) {
            float freq = 1.0f / (float) Math.pow(theta, headDim / (float) headSize);
            float val = p * freq;
            cos[off + headDim] = (float) Math.cos(val);
            sin[off + headDim] = (float) Math.sin(val);
        }
    }

    /** {@link #rope} with the angles {@link #ropeAngles} computed at {@code cos/sin[off ..]}. */
    static void rope(float[] q, int qOff, float[] k, int kOff, int dim, int kvDim, int headSize, float[] cos,
                     float[] sin, int off) {
        for (int i = 0; i < dim; i += 2) {
            int a = off + i % headSize;
            float fcr = cos[a];
            float fci = sin[a];
            rotate(q, qOff + i, fcr, fci);
            if (i < kvDim) {
                rotate(k, kOff + i, fcr, fci);
            }
        }
    }

    private static void rotate(float[] v, int i, float fcr, float fci) {
        float v0 = v[i];
        float v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }

    /** SwiGLU: h1[i] = silu(h1[i]) * h3[i] for i < n. */
    static void swiglu(float[] h1, float[] h3, int n) {
        for (int i = 0; i < n; i++) {
            float val = h1[i];
            val *= (1.0f / (1.0f + expf(-val)));
            val *= h3[i];
            h1[i] = val;
        }
    }

    /**
     * out[t][i] = sum_j w[i][j] * x[t][j] (W row-major [rows][cols]) for t < n, each sum accumulated in float in
     * index order like llama2.c's matmul. Four weight rows and two tokens run side by side only to give the CPU
     * independent chains and to read each weight once per pair of tokens (a batch of sequences then reads the weights
     * from cache, not memory, once per pair); every single sum still adds its terms in the same order, so the result
     * is bit for bit that of the plain loop, whatever {@code n} is.
     */
    static void matmul(float[] out, float[] x, float[] w, int n, int cols, int rows) {
        int i = 0;
        for (; i + 3 < rows; i += 4) {
            int b0 = i * cols;
            int b1 = b0 + cols;
            int b2 = b1 + cols;
            int b3 = b2 + cols;
            int t = 0;
            for (; t + 1 < n; t += 2) {
                int xa = t * cols;
                int xb = xa + cols;
                float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
                float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
                for (int j = 0; j < cols; j++) {
                    float w0 = w[b0 + j];
                    float w1 = w[b1 + j];
                    float w2 = w[b2 + j];
                    float w3 = w[b3 + j];
                    float xj = x[xa + j];
                    float yj = x[xb + j];
                    a0 += w0 * xj;
                    a1 += w1 * xj;
                    a2 += w2 * xj;
                    a3 += w3 * xj;
                    c0 += w0 * yj;
                    c1 += w1 * yj;
                    c2 += w2 * yj;
                    c3 += w3 * yj;
                }
                int oa = t * rows + i;
                int ob = oa + rows;
                out[oa] = a0;
                out[oa + 1] = a1;
                out[oa + 2] = a2;
                out[oa + 3] = a3;
                out[ob] = c0;
                out[ob + 1] = c1;
                out[ob + 2] = c2;
                out[ob + 3] = c3;
            }
            for (; t < n; t++) {
                int xo = t * cols;
                float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
                for (int j = 0; j < cols; j++) {
                    float xj = x[xo + j];
                    s0 += w[b0 + j] * xj;
                    s1 += w[b1 + j] * xj;
                    s2 += w[b2 + j] * xj;
                    s3 += w[b3 + j] * xj;
                }
                int oo = t * rows + i;
                out[oo] = s0;
                out[oo + 1] = s1;
                out[oo + 2] = s2;
                out[oo + 3] = s3;
            }
        }
        for (; i < rows; i++) {
            int b = i * cols;
            for (int t = 0; t < n; t++) {
                int xo = t * cols;
                float s = 0.0f;
                for (int j = 0; j < cols; j++) {
                    s += w[b + j] * x[xo + j];
                }
                out[t * rows + i] = s;
            }
        }
    }
}
