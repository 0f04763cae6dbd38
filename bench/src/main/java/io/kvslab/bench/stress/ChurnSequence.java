package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/** A sequence of a churn run and its model (the rows each (layer, KV head) should hold). */
final class ChurnSequence {
    final Sequence seq;
    final long salt;
    final KvLayout layout;
    final ChurnRows[] heads;

    ChurnSequence(KvLayout layout, Sequence seq, long salt) {
        this.layout = layout;
        this.heads = new ChurnRows[layout.layers() * layout.kvHeads()];
        this.seq = seq;
        this.salt = salt;
        for (int i = 0; i < heads.length; i++) {
            heads[i] = new ChurnRows();
        }
    }

    ChurnSequence(Sequence seq, long salt, ChurnSequence parent) {
        this.layout = parent.layout;
        this.heads = new ChurnRows[parent.heads.length];
        this.seq = seq;
        this.salt = salt;
        for (int i = 0; i < heads.length; i++) {
            heads[i] = parent.heads[i].copy();
        }
    }

    ChurnRows rows(int layer, int kvHead) {
        return heads[layer * layout.kvHeads() + kvHead];
    }

    long nextPosition() {
        long last = -1;
        for (ChurnRows r : heads) {
            last = Math.max(last, r.last());
        }
        return last + 1;
    }

    int maxRows() {
        int m = 0;
        for (ChurnRows r : heads) {
            m = Math.max(m, r.n);
        }
        return m;
    }
}
