package io.kvslab.testing;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The harness itself: a clean child is clean, a crashing child is reported with its fatal-error log. */
class ForkedJvmTest {
    /** Child program: prints, or dereferences a bogus native address when asked to crash. */
    public static final class Child {
        public static void main(String[] args) {
            if (args.length > 0 && args[0].equals("crash")) {
                MemorySegment.ofAddress(16).reinterpret(8).get(ValueLayout.JAVA_LONG, 0);   // SIGSEGV
            }
            System.out.println("child ran");
        }
    }

    @Test
    void cleanChildIsClean() throws Exception {
        ForkedJvm.Result r = ForkedJvm.run(Child.class, 60, List.of());
        assertTrue(r.clean(), r.describe());
        assertTrue(r.stdout().contains("child ran"), r.describe());
    }

    @Test
    void crashingChildIsReportedNotFatal() throws Exception {
        ForkedJvm.Result r = ForkedJvm.run(Child.class, 60, List.of(), "crash");
        assertFalse(r.clean());
        assertNotNull(r.hsErr(), r.describe());
        assertTrue(r.hsErr().contains("SIGSEGV"), r.describe());
    }
}
