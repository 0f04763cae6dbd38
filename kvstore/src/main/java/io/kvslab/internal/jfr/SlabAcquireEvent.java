package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;

/** A slab was taken from the OS (timed: the duration is the native allocation). Has a stack trace. */
@Name("io.kvslab.SlabAcquire")
@Label("Slab Acquire")
@Category("KVSlab")
@Description("A slab allocator obtained a new native slab")
public final class SlabAcquireEvent extends Event {
    @Label("Slab Index")
    public int slabIndex;

    @Label("Slab Bytes")
    @DataAmount
    public long slabBytes;

    @Label("Block Capacity")
    public int blockCapacity;

    @Label("Reserved Bytes After")
    @DataAmount
    public long reservedBytesAfter;
}
