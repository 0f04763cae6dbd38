package io.kvslab;

import io.kvslab.internal.ffm.NativeLibrary;
import io.kvslab.policy.Budget;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;

/**
 * Child JVM of {@link NativeAccessDeniedTest}: a store used end to end in a JVM that refuses native access. Prints
 * one line per check and exits 0 only when all held.
 */
public final class NativeAccessDeniedProbe {
    private NativeAccessDeniedProbe() {}

    public static void main(String[] args) {
        System.out.println("native available=" + NativeLibrary.isAvailable() + " reason=" + NativeLibrary.unavailableReason());
        // one KV head, head dim 2: keys (0,0) and (ln 3 * sqrt 2, 0) against query (1,0) score 0 and ln 3, so the
        // softmax weights are 1/4 and 3/4 of the values (4,0) and (0,8)
        KvLayout layout = new KvLayout(1, 1, 1, 2, DType.F32, 4);
        float k1 = (float) (Math.log(3) * Math.sqrt(2));
        KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(4096).withSpareSlabBytes(0));
        try (store; Attention att = Attention.create(1)) {
            Sequence s = store.newSequence();
            s.append(0, new float[] {0, 0}, new float[] {4, 0}, 0);
            s.append(0, new float[] {k1, 0}, new float[] {0, 8}, 1);
            float[] out = new float[2];
            att.decode(s, 0, new float[] {1, 0}, out);
            System.out.println("decode " + out[0] + " " + out[1]);
            if (Math.abs(out[0] - 1.0f) > 1e-5 || Math.abs(out[1] - 6.0f) > 1e-5) {
                throw new AssertionError("attention " + out[0] + ", " + out[1] + " instead of 1, 6");
            }
            // several slabs: fill many sequences, free most, compact (slabs go back through their arenas)
            Sequence[] many = new Sequence[64];
            for (int i = 0; i < many.length; i++) {
                many[i] = store.newSequence();
                for (int p = 0; p < 9; p++) {
                    many[i].append(0, new float[] {i, p}, new float[] {p, i}, p);
                }
            }
            // a policy on the Java path: Knorm keeps the rows with the smallest key norms (here p = 0, 1, 2)
            try (Compressor compressor = new Compressor()) {
                compressor.compress(many[5], Policies.knorm(), Budget.tokens(3));
            }
            long[] kept = many[5].positions(0, 0);
            System.out.println("knorm kept " + java.util.Arrays.toString(kept));
            if (!java.util.Arrays.equals(kept, new long[] {0, 1, 2})) {
                throw new AssertionError("knorm kept " + java.util.Arrays.toString(kept));
            }
            int slabs = store.metrics().slabs();
            for (int i = 1; i < many.length; i++) {
                many[i].close();
            }
            store.compact();
            System.out.println("slabs " + slabs + " -> " + store.metrics().slabs() + ", live bytes "
                    + store.stats().liveBytes());
            if (slabs < 2 || store.metrics().slabs() >= slabs) {
                throw new AssertionError("expected several slabs, fewer after compact");
            }
            many[0].close();
            s.close();
        }
        System.out.println("after close: reserved bytes " + store.stats().reservedBytes());
        if (store.stats().reservedBytes() != 0) {
            throw new AssertionError("native bytes left after close");
        }
        System.out.println("ok");
    }
}
