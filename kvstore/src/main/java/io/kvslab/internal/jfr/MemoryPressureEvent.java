package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;

/**
 * An allocation hit the store's limit and the registered pressure handlers were asked to free memory (timed: the
 * duration is the time spent in the handlers). Has a stack trace, which names the operation that allocated.
 */
@Name("io.kvslab.MemoryPressure")
@Label("KV Memory Pressure")
@Category("KVSlab")
@Description("Pressure handlers called before a MemoryLimitExceededException")
public final class MemoryPressureEvent extends Event {
    @Label("Requested Bytes")
    @DataAmount
    public long requestedBytes;

    @Label("Shortfall Bytes")
    @Description("Bytes that had to be freed for the request to fit")
    @DataAmount
    public long shortfallBytes;

    @Label("Live Bytes Before")
    @DataAmount
    public long liveBytesBefore;

    @Label("Live Bytes After")
    @DataAmount
    public long liveBytesAfter;

    @Label("Attempt")
    @Description("1 for the first retry of an allocation, 2 for the second, ...")
    public int attempt;

    @Label("Relieved")
    @Description("Whether a handler reported that it freed memory (the allocation is then retried)")
    public boolean relieved;
}
