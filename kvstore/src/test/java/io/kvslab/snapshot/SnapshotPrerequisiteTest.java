package io.kvslab.snapshot;

import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The snapshot entry points check Chronicle's prerequisites first (forked JVMs, since JVM flags and the class path
 * are fixed at start): a missing flag or jar is a {@link SnapshotException} with reason PREREQUISITE naming it, not Chronicle's
 * {@code AssertionError}.
 */
class SnapshotPrerequisiteTest {
    private static final String OPENS = "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED";
    private static final String EXPORTS = "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED";
    private static final String EXCEPTION = SnapshotException.class.getName() + " PREREQUISITE";

    private static String run(List<String> extraFlags, boolean withChronicle) throws Exception {
        // ForkedJvm adds native access and the Unsafe flag only: no Chronicle flag unless given here
        String cp = ForkedJvm.classPathWithout(e -> !withChronicle && e.contains("openhft"));
        ForkedJvm.Result r = ForkedJvm.runWithClassPath(SnapshotPrerequisiteProbe.class, 120, extraFlags, cp);
        assertTrue(r.clean(), r.describe());
        return r.stdout();
    }

    @Test
    void withoutFlagsTheFirstCallNamesBothFlags() throws Exception {
        String out = run(List.of(), true);
        assertTrue(out.contains("THROWN " + EXCEPTION), out);
        assertTrue(out.contains(OPENS) && out.contains(EXPORTS), out);
        assertFalse(out.contains("AssertionError"), out);
    }

    @Test
    void withOneFlagOnlyTheOtherIsNamed() throws Exception {
        String out = run(List.of(OPENS), true);
        assertTrue(out.contains("THROWN " + EXCEPTION), out);
        assertTrue(out.contains(EXPORTS), out);
        assertFalse(out.contains(OPENS), out);

        out = run(List.of(EXPORTS), true);
        assertTrue(out.contains("THROWN " + EXCEPTION), out);
        assertTrue(out.contains(OPENS), out);
        assertFalse(out.contains(EXPORTS), out);
    }

    @Test
    void withoutChronicleOnTheClassPathTheJarIsNamed() throws Exception {
        String out = run(List.of(OPENS, EXPORTS), false);
        assertTrue(out.contains("THROWN " + EXCEPTION), out);
        assertTrue(out.contains("net.openhft:chronicle-bytes"), out);
    }

    @Test
    void theTwoFlagsAreEnough() throws Exception {
        // the minimum found with Chronicle Bytes 2026.4 on JDK 25: jdk.internal.ref only silences a warning
        String out = run(List.of(OPENS, EXPORTS), true);
        assertTrue(out.contains("OK rows=1 restoredRows=1"), out);
    }
}
