package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * A call to a storage tier below native memory (a Redis server, a disk directory), or a decision about records
 * moving through one (a prefix block published, fetched, rejected by its checks, dropped from a full queue).
 */
@Name("io.kvslab.Tier")
@Label("KV Tier")
@Category("KVSlab")
@Description("A block tier call or prefix-block transfer decision")
@StackTrace(false)
public final class TierEvent extends Event {
    @Label("Tier")
    public String tier;

    /** {@code put}, {@code get}, {@code getAll}, {@code publish}, {@code fetch}, {@code reject}, {@code drop}. */
    @Label("Operation")
    public String operation;

    @Label("Keys")
    public int keys;

    @Label("Bytes")
    @DataAmount
    public long bytes;

    @Label("Succeeded")
    public boolean ok;

    @Label("Failure")
    public String failure;

    @Label("Call Time")
    @Timespan(Timespan.NANOSECONDS)
    public long nanos;
}
