package io.kvslab.bench.fuzz;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.snapshot.RestoredSequence;
import io.kvslab.snapshot.SnapshotInfo;
import io.kvslab.snapshot.Snapshots;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Runs one snapshot case: {@code Snapshots.inspect}, then {@code Snapshots.restoreAll} into a store of the file's own
 * layout (so mutated layouts are restored, not just compared), then reads every restored row. Oracle: restored values
 * are finite (append's rule), rows match what inspect reported, and closing the restored sequences leaves no block
 * live. A case with a cut opens the store under a memory limit with a ballast sequence: the store's pressure handler
 * (which runs on the restoring thread after verification, before the block copies) truncates the file and frees the
 * ballast, so the restore reads a file that shrank under it.
 */
final class SnapshotCaseRunner {
    private SnapshotCaseRunner() {}

    /** The seed snapshots, written by the real store and normalised (createdAt 0). */
    static List<Structure> seeds(Path dir) {
        List<Structure> out = new ArrayList<>();
        out.add(seed(dir, "sequences.kvs", new KvLayout(2, 4, 2, 16, DType.F16, 8), store -> {
            Sequence a = store.newSequence();
            fill(a, 0, 20, 42);
            Sequence b = a.fork();
            fill(b, 20, 25, 43);
            a.keep(1, 0, new int[] {0, 1, 2, 5, 9, 17});
            b.aliasKeyBlock(1, 1, 0, 0);
            return List.of(a, b);
        }));
        out.add(seed(dir, "empty.kvs", new KvLayout(1, 1, 1, 64, DType.F16, 32), store -> List.of()));
        out.add(seed(dir, "f32.kvs", new KvLayout(1, 2, 1, 8, DType.F32, 4), store -> {
            Sequence a = store.newSequence();
            fill(a, 0, 6, 44);
            return List.of(a);
        }));
        out.add(seed(dir, "bf16.kvs", new KvLayout(2, 1, 1, 8, DType.BF16, 4), store -> {
            Sequence a = store.newSequence();
            fill(a, 3, 9, 45);
            return List.of(a);
        }));
        return out;
    }

    private interface Content {
        List<Sequence> make(KvStore store);
    }

    private static Structure seed(Path dir, String name, KvLayout layout, Content content) {
        Path p = dir.resolve("seed-" + name);
        try (KvStore store = KvStore.open(layout)) {
            List<Sequence> seqs = content.make(store);
            Snapshots.saveStore(store, p);
            for (Sequence s : seqs) {
                s.close();
            }
            byte[] b = SnapshotStructure.normalize(Files.readAllBytes(p));
            Files.delete(p);
            return SnapshotStructure.parse(name, b);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void fill(Sequence s, long from, long to, long seed) {
        KvLayout l = s.layout();
        Random r = new Random(seed);
        float[] k = new float[l.kvHeads() * l.headDim()];
        float[] v = new float[k.length];
        for (long p = from; p < to; p++) {
            for (int layer = 0; layer < l.layers(); layer++) {
                for (int i = 0; i < k.length; i++) {
                    k[i] = r.nextFloat() - 0.5f;
                    v[i] = r.nextFloat() - 0.5f;
                }
                s.append(layer, k, v, p);
            }
        }
    }

    static CaseResult run(FuzzCase c, Path file) {
        SnapshotInfo info = Snapshots.inspect(file);
        KvLayout layout = info.layout();
        if (c.cutDuringRestore() < 0) {
            try (KvStore store = KvStore.open(layout)) {
                return restoreAndCheck(store, file, info);
            }
        }
        long blockBytes = layout.blockBytes();
        long ballastBlocks = 2L * layout.kvHeads();
        long need = info.blocks() * blockBytes;
        if (need == 0 || (long) layout.kvHeads() * layout.headDim() > 1 << 16) {
            try (KvStore store = KvStore.open(layout)) {   // nothing to stage, or a ballast too large to write
                return restoreAndCheck(store, file, info);
            }
        }
        StoreConfig config = StoreConfig.defaults().withLimitBytes(Math.max(need, ballastBlocks * blockBytes))
                .withSlabBytes(blockBytes);
        try (KvStore store = KvStore.open(layout, config)) {
            Sequence ballast = store.newSequence();
            float[] zeros = new float[layout.kvHeads() * layout.headDim()];
            ballast.append(0, zeros, zeros, 0);
            boolean[] cut = {false};
            store.addPressureHandler(pressure -> {
                if (cut[0]) {
                    return false;
                }
                cut[0] = true;
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    ch.truncate(c.cutDuringRestore());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                ballast.close();
                return true;
            });
            return restoreAndCheck(store, file, info);
        }
    }

    private static CaseResult restoreAndCheck(KvStore store, Path file, SnapshotInfo info) {
        long liveBefore = store.stats().liveBytes();
        List<RestoredSequence> restored;
        try {
            restored = Snapshots.restoreAll(store, file);
        } catch (KvSlabException e) {
            // only the ballast (when the pressure handler did not close it) may still hold memory
            long expected = store.sequences().isEmpty() ? 0 : liveBefore;
            if (store.stats().liveBytes() != expected) {
                return CaseResult.violation("a failed restore left " + (store.stats().liveBytes() - expected)
                        + " bytes allocated (" + e.getMessage() + ")");
            }
            throw e;
        }
        KvLayout l = store.layout();
        long rows = 0;
        for (RestoredSequence r : restored) {
            Sequence s = r.sequence();
            for (int layer = 0; layer < l.layers(); layer++) {
                for (int h = 0; h < l.kvHeads(); h++) {
                    int n = s.length(layer, h);
                    rows += n;
                    float[] k = new float[n * l.headDim()];
                    float[] v = new float[k.length];
                    s.readKeys(layer, h, k);
                    s.readValues(layer, h, v);
                    for (int i = 0; i < k.length; i++) {
                        if (!Float.isFinite(k[i]) || !Float.isFinite(v[i])) {
                            return CaseResult.violation("restored sequence " + r.savedId() + ", layer " + layer
                                    + ", KV head " + h + " holds a non-finite value at element " + i);
                        }
                    }
                }
            }
            s.close();
        }
        if (rows != info.rows()) {
            return CaseResult.violation("restored " + rows + " rows, inspect reported " + info.rows());
        }
        long live = store.stats().liveBytes();
        if (live != 0 && store.sequences().isEmpty()) {
            return CaseResult.violation(live + " bytes still live after closing every restored sequence");
        }
        return CaseResult.accepted();
    }
}
