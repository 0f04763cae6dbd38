package io.kvslab.bench.cli;

import io.kvslab.bench.synth.SyntheticKv;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreStats;
import io.kvslab.Attention;

import java.util.Locale;
import java.util.Set;

/**
 * {@code kvslab demo}: a Llama-3-8B-shaped store filled with a long synthetic context, decode attention over every
 * layer, and the memory and bandwidth numbers that matter.
 */
final class DemoCommand implements Command {
    @Override
    public String summary() {
        return "fill a Llama-3-8B-shaped store with a long synthetic context and run decode attention";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab demo [--tokens N] [--dtype f32|f16|bf16] [--layers N] [--threads N] [--steps N]
                  --tokens   context length (default 8192; suffixes k, m)
                  --dtype    stored element type (default f16)
                  --layers   layers of the Llama-3-8B geometry to materialise (default 32)
                  --threads  kernel threads (default: available processors)
                  --steps    decode steps to time, each over every layer (default 5)""";
    }

    @Override
    public int run(String[] argv) throws UsageException {
        Args a = new Args(argv, Set.of());
        int tokens = a.intValue("tokens", 8192, 1, 1 << 24);
        DType dtype = parseDtype(a.string("dtype", "f16"));
        int layers = a.intValue("layers", 32, 1, 32);
        int threads = a.intValue("threads", Runtime.getRuntime().availableProcessors(), 1, 64);
        int steps = a.intValue("steps", 5, 1, 1000);
        a.finish();

        KvLayout layout = KvLayout.of(layers, 32, 8, 128, dtype);
        System.out.printf(Locale.ROOT, "KVSlab demo: Llama-3-8B geometry (%d layers, 32 q heads, 8 KV heads, head dim 128),"
                + " %s, %d tokens/block, %d-token context%n", layers, dtype, layout.tokensPerBlock(), tokens);
        SyntheticKv rnd = new SyntheticKv(42);
        try (KvStore store = KvStore.open(layout)) {
            Sequence seq = store.newSequence();
            long t0 = System.nanoTime();
            int chunk = 256;
            int width = layout.kvHeads() * layout.headDim();
            float[] k = new float[chunk * width];
            float[] v = new float[chunk * width];
            for (int start = 0; start < tokens; start += chunk) {
                int n = Math.min(chunk, tokens - start);
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = start + i;
                }
                float[] kc = n == chunk ? k : new float[n * width];
                float[] vc = n == chunk ? v : new float[n * width];
                for (int l = 0; l < layers; l++) {
                    rnd.fill(kc);
                    rnd.fill(vc);
                    seq.appendChunk(l, kc, vc, pos);
                }
            }
            double fillSec = (System.nanoTime() - t0) / 1e9;
            StoreStats st = store.stats();
            long theoretical = layout.bytesPerToken() * tokens;
            System.out.printf(Locale.ROOT, "filled in %.2f s%n", fillSec);
            System.out.printf(Locale.ROOT, "  theoretical KV bytes  %,18d%n", theoretical);
            System.out.printf(Locale.ROOT, "  live bytes (blocks)   %,18d%n", st.liveBytes());
            System.out.printf(Locale.ROOT, "  reserved bytes (slabs)%,18d   overhead reserved/live %.4f, slabs %d%n",
                    st.reservedBytes(), st.memory().overheadRatio(), st.memory().slabs());

            float[] q = new float[layout.queryHeads() * layout.headDim()];
            float[] out = new float[q.length];
            rnd.fill(q);
            try (Attention attention = Attention.create(threads)) {
                for (int l = 0; l < layers; l++) {
                    attention.decode(seq, l, q, out);   // warm-up: JIT, thread pool, page faults
                }
                long t1 = System.nanoTime();
                for (int s = 0; s < steps; s++) {
                    for (int l = 0; l < layers; l++) {
                        attention.decode(seq, l, q, out);
                    }
                }
                double sec = (System.nanoTime() - t1) / 1e9;
                double bytesRead = (double) theoretical * steps;
                System.out.printf(Locale.ROOT, "decode attention: %d steps x %d layers, %d threads: %.2f ms/step,"
                        + " %.2f GB/s of KV read%n", steps, layers, threads, sec * 1e3 / steps, bytesRead / sec / 1e9);
            }
            seq.close();
        }
        System.out.println("store closed: native bytes held = 0 (a leak would have been reported)");
        return 0;
    }

    static DType parseDtype(String s) throws UsageException {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "f32", "fp32", "float32" -> DType.F32;
            case "f16", "fp16", "float16" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new UsageException("--dtype must be f32, f16 or bf16, got '" + s + "'");
        };
    }
}
