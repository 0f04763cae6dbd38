package io.kvslab.bench.model;

import io.kvslab.Sequence;

/**
 * The one plain-Java softmax attention of bench: llama2.c's loops and float arithmetic ({@link LlamaMath#softmax}),
 * so the Java model runner matches the llama2.c goldens bit for bit. It reads the rows back from the store
 * ({@link Sequence#readKeys}), so it is independent of the native kernel and correct for ragged (compressed)
 * sequences: the reference the kernel path, the stress runs and the pod calibration are checked against. The static
 * methods are the same arithmetic for callers that hold rows in arrays.
 *
 * <p>Stateless (scratch is allocated per call), so one instance may serve many threads.
 */
public final class ReferenceAttention implements SequenceAttention {
    /** The name {@link #name()} reports. */
    public static final String NAME = "java-reference";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public void decode(Sequence s, int layer, float[] q, float[] out) {
        attend(s, layer, q, 1, out, true);
    }

    @Override
    public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
        attend(s, layer, q, n, out, false);
    }

    /**
     * The same decode in double precision: scores, softmax and the weighted sum of values are accumulated in double
     * and rounded to float once. For checks of the fp32 kernels at long contexts, where llama2.c's float loops
     * ({@link #decode}) accumulate a rounding error of their own that grows with the row count (about 3e-4 at 16k
     * rows was seen): against this the kernel's error is its own.
     */
    public static void decodeExact(Sequence s, int layer, float[] q, float[] out) {
        var layout = s.layout();
        int hs = layout.headDim();
        int group = layout.groupSize();
        double scale = Math.sqrt(hs);
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            float[] keys = new float[len * hs];
            float[] values = new float[len * hs];
            s.readKeys(layer, kvh, keys);
            s.readValues(layer, kvh, values);
            double[] att = new double[len];
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                int qo = h * hs;
                double max = Double.NEGATIVE_INFINITY;
                for (int r = 0; r < len; r++) {
                    double score = 0;
                    for (int i = 0; i < hs; i++) {
                        score += (double) q[qo + i] * keys[r * hs + i];
                    }
                    att[r] = score / scale;
                    max = Math.max(max, att[r]);
                }
                double sum = 0;
                for (int r = 0; r < len; r++) {
                    att[r] = Math.exp(att[r] - max);
                    sum += att[r];
                }
                for (int i = 0; i < hs; i++) {
                    double acc = 0;
                    for (int r = 0; r < len; r++) {
                        acc += att[r] * values[r * hs + i];
                    }
                    out[qo + i] = len == 0 ? 0.0f : (float) (acc / sum);
                }
            }
        }
    }

    /** A decode over a head with no rows (evicted to nothing) gives zero like the kernel; a prefill needs its rows. */
    private static void attend(Sequence s, int layer, float[] q, int n, float[] out, boolean decode) {
        var layout = s.layout();
        int hs = layout.headDim();
        int heads = layout.queryHeads();
        int group = layout.groupSize();
        float[] keys = new float[0];
        float[] values = new float[0];
        float[] att = new float[0];
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            if (len < n && !decode) {
                throw new IllegalStateException("layer " + layer + " kv head " + kvh + " holds " + len
                        + " rows, fewer than the " + n + " queries of the chunk");
            }
            if (keys.length < len * hs) {
                keys = new float[len * hs];
                values = new float[len * hs];
            }
            if (att.length < len) {
                att = new float[len];
            }
            s.readKeys(layer, kvh, keys);
            s.readValues(layer, kvh, values);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int t = 0; t < n; t++) {
                    int qo = (t * heads + h) * hs;
                    head(q, qo, keys, values, Math.max(0, len - n + t + 1), hs, att, out, qo);
                }
            }
        }
    }

    /**
     * The attention weights of one query head ({@code q[qOff .. qOff+hs)}) over the first {@code rows} keys
     * ({@code keys: [rows][hs]}) into {@code att[0 .. rows)}: scores q.k / sqrt(hs), then llama2.c's softmax.
     */
    public static void weights(float[] q, int qOff, float[] keys, int rows, int hs, float[] att) {
        weights(q, qOff, keys, 0, hs, rows, hs, att);
    }

    /**
     * One query head over the first {@code rows} rows ({@code keys, values: [rows][hs]}) into
     * {@code out[outOff .. outOff+hs)}; {@code att} is scratch of at least {@code rows}. With no rows the output is
     * zero (no attention mass anywhere).
     */
    public static void head(float[] q, int qOff, float[] keys, float[] values, int rows, int hs, float[] att,
                            float[] out, int outOff) {
        head(q, qOff, keys, values, 0, hs, rows, hs, att, out, outOff);
    }

    /**
     * {@link #head} over rows interleaved with other heads' (llama2.c's {@code key_cache} layout): row {@code r} of
     * this head starts at {@code offset + r * stride} in {@code keys} and {@code values}.
     */
    public static void head(float[] q, int qOff, float[] keys, float[] values, int offset, int stride, int rows,
                            int hs, float[] att, float[] out, int outOff) {
        weights(q, qOff, keys, offset, stride, rows, hs, att);
        for (int i = 0; i < hs; i++) {
            out[outOff + i] = 0.0f;
        }
        for (int r = 0; r < rows; r++) {
            int vr = offset + r * stride;
            float a = att[r];
            for (int i = 0; i < hs; i++) {
                out[outOff + i] += a * values[vr + i];
            }
        }
    }

    private static void weights(float[] q, int qOff, float[] keys, int offset, int stride, int rows, int hs,
                                float[] att) {
        float scale = (float) Math.sqrt(hs);
        for (int r = 0; r < rows; r++) {
            int kr = offset + r * stride;
            float score = 0.0f;
            for (int i = 0; i < hs; i++) {
                score += q[qOff + i] * keys[kr + i];
            }
            att[r] = score / scale;
        }
        if (rows > 0) {
            LlamaMath.softmax(att, 0, rows);
        }
    }
}
