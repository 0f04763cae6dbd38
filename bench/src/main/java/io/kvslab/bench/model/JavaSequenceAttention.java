package io.kvslab.bench.model;

import io.kvslab.Sequence;

/**
 * A plain-Java {@link SequenceAttention} that reads the rows back from the store ({@link Sequence#readKeys}) and
 * attends with llama2.c's loops. Independent of the native kernel, and correct for ragged (compressed) sequences, so it
 * serves as the reference the kernel path is checked against.
 */
public final class JavaSequenceAttention implements SequenceAttention {
    private float[] keys = new float[0];
    private float[] values = new float[0];
    private float[] att = new float[0];

    @Override
    public void decode(Sequence s, int layer, float[] q, float[] out) {
        prefill(s, layer, q, 1, out);
    }

    @Override
    public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
        var layout = s.layout();
        int hs = layout.headDim();
        int heads = layout.queryHeads();
        int group = layout.groupSize();
        float scale = (float) Math.sqrt(hs);
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            if (len < n) {
                throw new IllegalStateException("layer " + layer + " kv head " + kvh + " holds " + len
                        + " rows, fewer than the " + n + " queries of the chunk");
            }
            if (keys.length < len * hs) {
                keys = new float[len * hs * 2];
                values = new float[len * hs * 2];
            }
            if (att.length < len) {
                att = new float[len * 2];
            }
            s.readKeys(layer, kvh, keys);
            s.readValues(layer, kvh, values);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int t = 0; t < n; t++) {
                    int visible = len - n + t + 1;
                    int qo = (t * heads + h) * hs;
                    for (int r = 0; r < visible; r++) {
                        float score = 0.0f;
                        for (int i = 0; i < hs; i++) {
                            score += q[qo + i] * keys[r * hs + i];
                        }
                        att[r] = score / scale;
                    }
                    LlamaMath.softmax(att, 0, visible);
                    for (int i = 0; i < hs; i++) {
                        out[qo + i] = 0.0f;
                    }
                    for (int r = 0; r < visible; r++) {
                        float a = att[r];
                        for (int i = 0; i < hs; i++) {
                            out[qo + i] += a * values[r * hs + i];
                        }
                    }
                }
            }
        }
    }
}
