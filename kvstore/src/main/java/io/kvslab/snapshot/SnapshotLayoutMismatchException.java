package io.kvslab.snapshot;

import io.kvslab.KvLayout;

/** A snapshot was taken with a KV layout other than the target store's: its blocks would not fit. */
public final class SnapshotLayoutMismatchException extends SnapshotException {
    private final KvLayout fileLayout;
    private final KvLayout storeLayout;

    public SnapshotLayoutMismatchException(String file, KvLayout fileLayout, KvLayout storeLayout) {
        super("snapshot " + file + " was taken with layout " + fileLayout + " but the store has " + storeLayout
                + "; restore into a store with the same layers, heads, head dim, dtype and tokens per block");
        this.fileLayout = fileLayout;
        this.storeLayout = storeLayout;
    }

    public KvLayout fileLayout() {
        return fileLayout;
    }

    public KvLayout storeLayout() {
        return storeLayout;
    }
}
