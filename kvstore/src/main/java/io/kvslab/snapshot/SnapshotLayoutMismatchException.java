package io.kvslab.snapshot;

import io.kvslab.KvLayout;

/** A snapshot was taken with a KV layout other than the target store's: its blocks would not fit. */
public final class SnapshotLayoutMismatchException extends SnapshotException {
    /** The layout the snapshot was taken with. */
    private final KvLayout fileLayout;
    /** The layout of the store it was to be restored into. */
    private final KvLayout storeLayout;

    /**
     * An exception naming the file and both layouts.
     *
     * @param file the snapshot file, as named in the message
     * @param fileLayout the layout recorded in the snapshot
     * @param storeLayout the target store's layout
     */
    public SnapshotLayoutMismatchException(String file, KvLayout fileLayout, KvLayout storeLayout) {
        super("snapshot " + file + " was taken with layout " + fileLayout + " but the store has " + storeLayout
                + "; restore into a store with the same layers, heads, head dim, dtype and tokens per block");
        this.fileLayout = fileLayout;
        this.storeLayout = storeLayout;
    }

    /**
     * The layout the snapshot was taken with.
     *
     * @return the file's layout
     */
    public KvLayout fileLayout() {
        return fileLayout;
    }

    /**
     * The layout of the store the snapshot was to be restored into.
     *
     * @return the store's layout
     */
    public KvLayout storeLayout() {
        return storeLayout;
    }
}
