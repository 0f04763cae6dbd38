package example;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.snapshot.SnapshotException;
import io.kvslab.snapshot.Snapshots;

import java.io.File;
import java.nio.file.Path;
import java.util.List;

/**
 * An application that depends on io.kvslab:kvslab-core alone: the class path holds this project and that jar, the
 * native library comes out of the jar, and snapshots report their optional dependency instead of failing oddly.
 */
public final class EmbedCheck {
    public static void main(String[] args) throws Exception {
        List<String> cp = List.of(System.getProperty("java.class.path").split(File.pathSeparator));
        System.out.println("class path: " + cp);
        check(cp.size() == 2 && cp.stream().anyMatch(e -> e.endsWith(".jar") && e.contains("kvslab-core")),
                "the class path must be this project + the kvslab-core jar, nothing else");
        for (String absent : List.of("net.openhft.chronicle.bytes.MappedBytes", "org.slf4j.LoggerFactory")) {
            try {
                Class.forName(absent);
                check(false, absent + " must not come with kvslab-core");
            } catch (ClassNotFoundException expected) {
                // optional or CLI-only dependency: not carried
            }
        }

        int layers = 2, queryHeads = 4, kvHeads = 2, headDim = 64, tokens = 40;
        KvLayout layout = KvLayout.of(layers, queryHeads, kvHeads, headDim, DType.F16);
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withLimitBytes(16L << 20));
             Attention attention = Attention.create(1)) {
            float[] out = new float[queryHeads * headDim];
            float[] q = new float[queryHeads * headDim];
            q[0] = 1;
            try (Sequence seq = store.newSequence()) {
                for (int t = 0; t < tokens; t++) {
                    for (int layer = 0; layer < layers; layer++) {
                        float[] k = new float[kvHeads * headDim];
                        float[] v = new float[kvHeads * headDim];
                        k[0] = t;
                        v[0] = t; // value of token t in dim 0 of KV head 0 = t
                        seq.append(layer, k, v, t);
                    }
                }
                attention.decode(seq, 1, q, out);
                // q . k_t = t: softmax over t = 0..39 scaled by 1/8, so the weighted mean of v (= t) is known
                double num = 0, den = 0;
                for (int t = 0; t < tokens; t++) {
                    double w = Math.exp((t - (tokens - 1)) / Math.sqrt(headDim));
                    num += w * t;
                    den += w;
                }
                check(Math.abs(out[0] - num / den) < 1e-3, "decode output " + out[0] + " vs reference " + num / den);
                try {
                    Snapshots.save(seq, Path.of("target", "never-written.kvs"));
                    check(false, "a snapshot without Chronicle must fail");
                } catch (SnapshotException e) {
                    check(e.reason() == SnapshotException.Reason.PREREQUISITE, "reason " + e.reason());
                    System.out.println("snapshot without Chronicle: " + e.getMessage());
                }
            }
            check(store.stats().liveBytes() == 0, "live bytes after closing every sequence: "
                    + store.stats().liveBytes());
        }
        System.out.println("EMBED OK");
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }
}
