package io.kvslab.bench.stress;

import java.util.Arrays;

/** The model of one (layer, KV head) in a churn run: position and writer salt of every row. */
final class ChurnRows {
    long[] pos = new long[16];
    long[] salt = new long[16];
    int n;

    ChurnRows copy() {
        ChurnRows r = new ChurnRows();
        r.pos = pos.clone();
        r.salt = salt.clone();
        r.n = n;
        return r;
    }

    void add(long p, long s) {
        if (n == pos.length) {
            pos = Arrays.copyOf(pos, n * 2);
            salt = Arrays.copyOf(salt, n * 2);
        }
        pos[n] = p;
        salt[n] = s;
        n++;
    }

    void keep(int[] rows) {
        for (int j = 0; j < rows.length; j++) {
            pos[j] = pos[rows[j]];
            salt[j] = salt[rows[j]];
        }
        n = rows.length;
    }

    long last() {
        return n == 0 ? -1 : pos[n - 1];
    }
}
