package io.kvslab.snapshot;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Main of a forked JVM: saves, inspects and restores a one-row sequence and prints {@code OK rows=N} or
 * {@code THROWN <class>: <message>} (whatever was thrown, typed or not; for a SnapshotException the class is
 * followed by its reason and missing flags).
 */
public final class SnapshotPrerequisiteProbe {
    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("kvslab-prereq");
        Path file = dir.resolve("s.kvs");
        try (KvStore store = KvStore.open(KvLayout.of(1, 2, 1, 8, DType.F32)); Sequence s = store.newSequence()) {
            float[] k = new float[8];
            float[] v = new float[8];
            for (int i = 0; i < 8; i++) {
                k[i] = i;
                v[i] = -i;
            }
            s.append(0, k, v, 0);
            Snapshots.save(s, file);
            SnapshotInfo info = Snapshots.inspect(file);
            try (Sequence restored = Snapshots.restore(store, file)) {
                System.out.println("OK rows=" + info.rows() + " restoredRows=" + restored.length(0, 0));
            }
        } catch (SnapshotException e) {
            System.out.println("THROWN " + e.getClass().getName() + " " + e.reason() + " " + e.missingFlags() + ": "
                    + e.getMessage());
        } catch (Throwable t) {
            System.out.println("THROWN " + t.getClass().getName() + ": " + t.getMessage());
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }
}
