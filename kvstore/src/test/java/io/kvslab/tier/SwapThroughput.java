package io.kvslab.tier;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.snapshot.Snapshots;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Not a test: times swapping one Llama-3-8B-geometry sequence (32 layers, 8 KV heads, head dim 128, f16, 32 tokens
 * per block) out to a {@link DiskTier} and back, against the baseline of saving and restoring the same sequence as
 * one snapshot file, interleaved A B A B in one process (docs/tiers.md, "Measured"). Run with the test classpath:
 * {@code java <flags> -cp ... io.kvslab.tier.SwapThroughput DIR TOKENS ROUNDS}.
 */
public final class SwapThroughput {
    private SwapThroughput() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "/tmp/kvslab-swap-bench");
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 4;
        KvLayout layout = new KvLayout(32, 32, 8, 128, DType.F16, 32);
        Files.createDirectories(dir);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir.resolve("tier"), 1L << 34)) {
            Sequence s = store.newSequence();
            float[] k = new float[tokens * layout.kvHeads() * layout.headDim()];
            float[] v = new float[k.length];
            long[] pos = new long[tokens];
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) Math.sin(i * 0.001);
                v[i] = (float) Math.cos(i * 0.001);
            }
            for (int i = 0; i < tokens; i++) {
                pos[i] = i;
            }
            for (int l = 0; l < layout.layers(); l++) {
                s.appendChunk(l, k, v, pos);
            }
            long bytes = store.stats().liveBytes();
            Path snap = dir.resolve("seq.kvs");
            System.out.printf("sequence: %d tokens, %.1f MiB native%n", tokens, bytes / 1048576.0);
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                SwappedSequence h = s.swapOut(tier);
                long t1 = System.nanoTime();
                s = store.swapIn(h);
                long t2 = System.nanoTime();
                Snapshots.save(s, snap);
                s.close();
                long t3 = System.nanoTime();
                s = Snapshots.restore(store, snap);
                long t4 = System.nanoTime();
                System.out.printf("round %d: swap out %.0f ms, swap in %.0f ms (%d records, %.1f MiB) | "
                                + "snapshot save+close %.0f ms, restore %.0f ms | swap/snapshot %.2f%n", r,
                        (t1 - t0) / 1e6, (t2 - t1) / 1e6, h.keys().size(), h.recordBytes() / 1048576.0,
                        (t3 - t2) / 1e6, (t4 - t3) / 1e6, (double) (t2 - t0) / (t4 - t2));
                Files.deleteIfExists(snap);
            }
            s.close();
        } finally {
            try (Stream<Path> w = Files.walk(dir)) {
                w.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
