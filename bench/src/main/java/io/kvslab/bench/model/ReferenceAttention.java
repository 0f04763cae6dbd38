package io.kvslab.bench.model;

import io.kvslab.Sequence;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The one plain-Java softmax attention of bench: llama2.c's loops and float arithmetic ({@link LlamaMath#softmax}),
 * so the Java model runner matches the llama2.c goldens bit for bit. It reads the rows back from the store
 * ({@link Sequence#readKeys}), so it is independent of the native kernel and correct for ragged (compressed)
 * sequences: the reference the kernel path, the stress runs and the pod calibration are checked against. The static
 * methods are the same arithmetic for callers that hold rows in arrays.
 *
 * <p>One instance may serve many threads: the arrays the rows are read back into are kept by the instance for the
 * next call, but only one call at a time uses them (claimed with a compare-and-set); a call made while another is
 * running allocates its own, as every call did before. A {@code generate} run reads every row of every head on each
 * token, and allocating those arrays afresh was ~60 MB of garbage and two collections per 512 positions of stories260K.
 */
public final class ReferenceAttention implements SequenceAttention {
    /** The name {@link #name()} reports. */
    public static final String NAME = "java-reference";

    private final AtomicBoolean scratchInUse = new AtomicBoolean();
    private final Scratch scratch = new Scratch();

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public void decode(Sequence s, int layer, float[] q, float[] out) {
        attendWithScratch(s, layer, q, 1, out, true);
    }

    @Override
    public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
        attendWithScratch(s, layer, q, n, out, false);
    }

    private void attendWithScratch(Sequence s, int layer, float[] q, int n, float[] out, boolean decode) {
        if (!scratchInUse.compareAndSet(false, true)) {
            attend(s, layer, q, n, out, decode, new Scratch());
            return;
        }
        try {
            attend(s, layer, q, n, out, decode, scratch);
        } finally {
            scratchInUse.set(false);
        }
    }

    /** The rows of one KV head read back, and one head's attention weights; grown as needed, never shrunk. */
    private static final class Scratch {
        float[] keys = new float[0];
        float[] values = new float[0];
        float[] att = new float[0];
    }

    /**
     * The same decode in double precision: scores, softmax and the weighted sum of values are accumulated in double
     * and rounded to float once. For checks of the fp32 kernels at long contexts, where llama2.c's float loops
     * ({@link #decode}) accumulate a rounding error of their own that grows with the row count (about 3e-4 at 16k
     * rows was seen): against this the kernel's error is its own.
     *
     * <p>Each score is {@code sum_i q_i k_i} over i in order and each output {@code sum_r a_r v_r[i] / sum_r a_r}
     * over r in order; the loops are arranged for speed without changing any sum's order (so the result is the
     * same bits as the one-head-at-a-time form): the query heads of a GQA group are scored together from one read
     * of each key row (independent sums the CPU overlaps), and the weighted value sum walks the value rows in
     * memory order, accumulating every dimension at once, instead of walking a column of rows per dimension.
     */
    public static void decodeExact(Sequence s, int layer, float[] q, float[] out) {
        var layout = s.layout();
        int hs = layout.headDim();
        int group = layout.groupSize();
        double scale = Math.sqrt(hs);
        double[] qd = new double[group * hs];
        double[] acc = new double[hs];
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            float[] keys = new float[len * hs];
            float[] values = new float[len * hs];
            s.readKeys(layer, kvh, keys);
            s.readValues(layer, kvh, values);
            int first = kvh * group;
            for (int i = 0; i < group * hs; i++) {
                qd[i] = q[first * hs + i];
            }
            double[][] att = new double[group][len];
            groupScores(qd, group, keys, len, hs, scale, att);
            for (int j = 0; j < group; j++) {
                double[] a = att[j];
                double max = Double.NEGATIVE_INFINITY;
                for (int r = 0; r < len; r++) {
                    max = Math.max(max, a[r]);
                }
                double sum = 0;
                for (int r = 0; r < len; r++) {
                    a[r] = Math.exp(a[r] - max);
                    sum += a[r];
                }
                java.util.Arrays.fill(acc, 0);
                for (int r = 0; r < len; r++) {
                    double w = a[r];
                    int vr = r * hs;
                    for (int i = 0; i < hs; i++) {
                        acc[i] += w * values[vr + i];
                    }
                }
                int qo = (first + j) * hs;
                for (int i = 0; i < hs; i++) {
                    out[qo + i] = len == 0 ? 0.0f : (float) (acc[i] / sum);
                }
            }
        }
    }

    /** {@code att[j][r] = (sum_i qd[j*hs+i] * keys[r*hs+i]) / scale}, sums in i order, the group's heads together. */
    private static void groupScores(double[] qd, int group, float[] keys, int len, int hs, double scale,
                                    double[][] att) {
        int j = 0;
        for (; j + 4 <= group; j += 4) {
            int q0 = j * hs;
            int q1 = q0 + hs;
            int q2 = q1 + hs;
            int q3 = q2 + hs;
            for (int r = 0; r < len; r++) {
                int kr = r * hs;
                double s0 = 0;
                double s1 = 0;
                double s2 = 0;
                double s3 = 0;
                for (int i = 0; i < hs; i++) {
                    double k = keys[kr + i];
                    s0 += qd[q0 + i] * k;
                    s1 += qd[q1 + i] * k;
                    s2 += qd[q2 + i] * k;
                    s3 += qd[q3 + i] * k;
                }
                att[j][r] = s0 / scale;
                att[j + 1][r] = s1 / scale;
                att[j + 2][r] = s2 / scale;
                att[j + 3][r] = s3 / scale;
            }
        }
        for (; j < group; j++) {
            int q0 = j * hs;
            for (int r = 0; r < len; r++) {
                int kr = r * hs;
                double s0 = 0;
                for (int i = 0; i < hs; i++) {
                    s0 += qd[q0 + i] * keys[kr + i];
                }
                att[j][r] = s0 / scale;
            }
        }
    }

    /** A decode over a head with no rows (evicted to nothing) gives zero like the kernel; a prefill needs its rows. */
    private static void attend(Sequence s, int layer, float[] q, int n, float[] out, boolean decode, Scratch sc) {
        var layout = s.layout();
        int hs = layout.headDim();
        int heads = layout.queryHeads();
        int group = layout.groupSize();
        float[] keys = sc.keys;
        float[] values = sc.values;
        float[] att = sc.att;
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            if (len < n && !decode) {
                throw new IllegalStateException("layer " + layer + " kv head " + kvh + " holds " + len
                        + " rows, fewer than the " + n + " queries of the chunk");
            }
            if (keys.length < len * hs) {   // doubling: a decode's sequence grows by one row per token
                int size = (int) Math.min(Integer.MAX_VALUE - 8, Math.max((long) len * hs, 2L * keys.length));
                keys = new float[size];
                values = new float[size];
                sc.keys = keys;
                sc.values = values;
            }
            if (att.length < len) {
                att = new float[(int) Math.min(Integer.MAX_VALUE - 8, Math.max(len, 2L * att.length))];
                sc.att = att;
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
