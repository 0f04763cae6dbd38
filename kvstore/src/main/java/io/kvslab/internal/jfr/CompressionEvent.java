package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * Rows of one (layer, KV head) were dropped: {@code Sequence.retain}, which every compression policy ends in.
 * Emitted once per retained table; {@code bytesFreed} counts the K and V blocks the table gave up.
 */
@Name("io.kvslab.Compression")
@Label("KV Compression")
@Category("KVSlab")
@Description("Rows evicted from one (layer, KV head) of a sequence by retain")
@StackTrace(false)
public final class CompressionEvent extends Event {
    @Label("Sequence Id")
    public long sequenceId;

    @Label("Layer")
    public int layer;

    @Label("KV Head")
    public int kvHead;

    @Label("Rows Before")
    public int rowsBefore;

    @Label("Rows After")
    public int rowsAfter;

    @Label("Bytes Freed")
    @Description("K and V block bytes the table released (2 x blocks dropped x block bytes)")
    @DataAmount
    public long bytesFreed;
}
