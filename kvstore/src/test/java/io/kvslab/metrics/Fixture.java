package io.kvslab.metrics;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/** Appends deterministic tokens to every layer of a sequence. */
final class Fixture {
    private Fixture() {}

    static void fill(Sequence s, long from, long to) {
        KvLayout layout = s.layout();
        int width = layout.kvHeads() * layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            for (long p = from; p < to; p++) {
                float[] k = new float[width];
                float[] v = new float[width];
                for (int i = 0; i < width; i++) {
                    k[i] = (float) Math.sin(p * 0.3 + i + l);
                    v[i] = (float) Math.cos(p * 0.7 + i - l);
                }
                s.append(l, k, v, p);
            }
        }
    }
}
