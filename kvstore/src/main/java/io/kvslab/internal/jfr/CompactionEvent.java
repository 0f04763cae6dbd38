package io.kvslab.internal.jfr;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** One {@code KvStore.compact()}: a timed event (its duration is the time spent holding the store exclusively). */
@Name("io.kvslab.Compaction")
@Label("KV Store Compaction")
@Category("KVSlab")
@Description("Blocks moved out of sparse slabs and empty slabs returned to the OS")
@StackTrace(false)
public final class CompactionEvent extends Event {
    @Label("Blocks Moved")
    public long blocksMoved;

    @Label("Bytes Moved")
    @DataAmount
    public long bytesMoved;

    @Label("Slabs Released")
    public int slabsReleased;

    @Label("Bytes Released")
    @DataAmount
    public long bytesReleased;

    @Label("Reserved Bytes After")
    @DataAmount
    public long reservedBytesAfter;
}
