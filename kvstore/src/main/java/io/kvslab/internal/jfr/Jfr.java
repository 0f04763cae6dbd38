package io.kvslab.internal.jfr;

import jdk.jfr.FlightRecorder;

/**
 * Gate for KVSlab's JFR events (the event classes live next to it in this unexported package; recordings and
 * {@code RecordingStream}s select them by their {@code @Name}, e.g. {@code io.kvslab.Compression}). The first use
 * of any {@code jdk.jfr.Event} subclass initialises Flight Recorder,
 * which costs about half a second even when nothing records. Emission sites therefore touch event classes only
 * while Flight Recorder is initialised (started with {@code -XX:StartFlightRecording}, {@code jcmd JFR.start}
 * or the {@code jdk.jfr} API); the check itself is a static flag read.
 */
public final class Jfr {
    private Jfr() {}

    /** True when Flight Recorder is running in this JVM, so events may be recorded. */
    public static boolean recording() {
        return FlightRecorder.isInitialized();
    }
}
