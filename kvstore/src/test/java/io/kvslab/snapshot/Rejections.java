package io.kvslab.snapshot;

import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Asserts that a snapshot call fails with a {@link SnapshotException} of one {@link SnapshotException.Reason}. */
final class Rejections {
    private Rejections() {}

    static SnapshotException assertRejected(SnapshotException.Reason reason, Executable call) {
        SnapshotException e = assertThrows(SnapshotException.class, call);
        assertEquals(reason, e.reason(), e.getMessage());
        return e;
    }

    static SnapshotException assertCorrupt(Executable call) {
        return assertRejected(SnapshotException.Reason.CORRUPT, call);
    }
}
