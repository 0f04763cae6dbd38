package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** A snapshot file was saved or restored (timed). */
@Name("io.kvslab.Snapshot")
@Label("KV Snapshot")
@Category("KVSlab")
@Description("A sequence snapshot written to or restored from a file")
@StackTrace(false)
public final class SnapshotEvent extends Event {
    /** {@code "save"} or {@code "restore"}. */
    @Label("Operation")
    public String operation;

    @Label("Path")
    public String path;

    @Label("Sequences")
    public int sequences;

    @Label("Blocks")
    public int blocks;

    @Label("File Bytes")
    @DataAmount
    public long fileBytes;
}
