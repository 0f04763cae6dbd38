package io.kvslab.bench.jmh;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decode attention of one Llama-3-8B layer ({@link DecodeAttentionBench}'s geometry) timed by the calling thread's
 * CPU time as well as wall time, with one thread (the kernel then runs on the caller), dtypes interleaved step by
 * step (A B C A B C ...). On a machine shared with other busy processes wall time mostly measures the scheduler;
 * thread CPU time measures the work of one step (still slowed by other processes' use of caches and memory
 * bandwidth). Usage: {@code java --enable-native-access=ALL-UNNAMED -cp bench/target/kvslab.jar
 * io.kvslab.bench.jmh.DecodeCpuTime CONTEXT STEPS DTYPE...}; prints median ms per step per dtype.
 */
public final class DecodeCpuTime {
    private DecodeCpuTime() {}

    public static void main(String[] args) {
        int context = Integer.parseInt(args[0]);
        int steps = Integer.parseInt(args[1]);
        List<DType> dtypes = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            dtypes.add(DType.valueOf(args[i]));
        }
        int n = dtypes.size();
        KvStore[] stores = new KvStore[n];
        Sequence[] seqs = new Sequence[n];
        for (int i = 0; i < n; i++) {
            KvLayout layout = new KvLayout(1, DecodeAttentionBench.QUERY_HEADS, DecodeAttentionBench.KV_HEADS,
                    DecodeAttentionBench.HEAD_DIM, dtypes.get(i), 32);
            stores[i] = KvStore.open(layout);
            seqs[i] = stores[i].newSequence();
            fill(seqs[i], context);
        }
        float[] q = new float[DecodeAttentionBench.QUERY_HEADS * DecodeAttentionBench.HEAD_DIM];
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] out = new float[q.length];
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        double[][] cpu = new double[n][steps];
        double[][] wall = new double[n][steps];
        try (Attention att = Attention.create(1)) {
            for (int w = 0; w < 3; w++) {   // warm-up
                for (int i = 0; i < n; i++) {
                    att.decode(seqs[i], 0, q, out);
                }
            }
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < n; i++) {
                    long c0 = mx.getCurrentThreadCpuTime();
                    long t0 = System.nanoTime();
                    att.decode(seqs[i], 0, q, out);
                    wall[i][s] = (System.nanoTime() - t0) / 1e6;
                    cpu[i][s] = (mx.getCurrentThreadCpuTime() - c0) / 1e6;
                }
            }
        }
        System.out.printf(Locale.ROOT, "context %d, %d steps, 1 thread, interleaved%n", context, steps);
        System.out.printf(Locale.ROOT, "%6s %10s %12s %12s %14s%n", "dtype", "KV MiB", "cpu ms/step", "wall ms/step",
                "GB/s (cpu)");
        for (int i = 0; i < n; i++) {
            long bytes = DecodeAttentionBench.kvBytes(context, dtypes.get(i));
            double c = median(cpu[i]);
            System.out.printf(Locale.ROOT, "%6s %10.1f %12.3f %12.3f %14.2f%n", dtypes.get(i), bytes / 1048576.0, c,
                    median(wall[i]), bytes / c / 1e6);
            seqs[i].close();
            stores[i].close();
        }
    }

    private static void fill(Sequence s, int context) {
        int chunk = 1024;
        SplittableRandom rnd = new SplittableRandom(42);
        int floats = chunk * DecodeAttentionBench.KV_HEADS * DecodeAttentionBench.HEAD_DIM;
        float[] k = new float[floats];
        float[] v = new float[floats];
        for (int i = 0; i < floats; i++) {
            k[i] = (float) rnd.nextDouble(-1, 1);
            v[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int done = 0; done < context; done += chunk) {
            int m = Math.min(chunk, context - done);
            long[] positions = new long[m];
            for (int i = 0; i < m; i++) {
                positions[i] = done + i;
            }
            int f = m * DecodeAttentionBench.KV_HEADS * DecodeAttentionBench.HEAD_DIM;
            s.appendChunk(0, m == chunk ? k : Arrays.copyOf(k, f), m == chunk ? v : Arrays.copyOf(v, f), positions);
        }
    }

    private static double median(double[] a) {
        double[] b = a.clone();
        Arrays.sort(b);
        return b[b.length / 2];
    }
}
