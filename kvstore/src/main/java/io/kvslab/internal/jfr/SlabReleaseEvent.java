package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** A slab was returned to the OS. */
@Name("io.kvslab.SlabRelease")
@Label("Slab Release")
@Category("KVSlab")
@Description("A slab allocator returned a native slab to the OS")
@StackTrace(false)
public final class SlabReleaseEvent extends Event {
    /** Why the slab went back: {@code "empty"} (a free left a second empty slab), {@code "compaction"}, {@code "close"}. */
    @Label("Reason")
    public String reason;

    @Label("Slab Index")
    public int slabIndex;

    @Label("Slab Bytes")
    @DataAmount
    public long slabBytes;

    @Label("Reserved Bytes After")
    @DataAmount
    public long reservedBytesAfter;
}
