package io.kvslab.bench.serve;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * A pressure policy acted on a running sequence because a scheduler's next step did not fit: compressed it, swapped
 * it out, or dropped it for recompute ({@link PressurePolicy}). Timed: the duration is the action's. The serving
 * scheduler's event (it moved here from the library with the pressure policy); the name is unchanged, so recordings
 * select it as before.
 */
@Name("io.kvslab.Preemption")
@Label("KV Preemption")
@Category("KVSlab")
@Description("A running sequence compressed, swapped out or dropped for recompute under memory pressure")
@StackTrace(false)
final class PreemptionEvent extends Event {
    @Label("Sequence Id")
    public long sequenceId;

    @Label("Action")
    @Description("compress, swap or recompute")
    public String action;

    @Label("Detail")
    @Description("The compression policy and budget, or the tier")
    public String detail;

    @Label("Bytes Freed")
    @DataAmount
    public long bytesFreed;

    @Label("Bytes Needed")
    @Description("The shortfall the scheduler asked the policy to cover")
    @DataAmount
    public long bytesNeeded;
}
