package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.Attention;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreStats;
import io.kvslab.bench.synth.RandomFloats;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code kvslab demo}: a Llama-3-8B-shaped store filled with a long synthetic context, decode attention over every
 * layer, and the memory and bandwidth numbers that matter.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Fill a Llama-3-8B-shaped store with a long synthetic context and time decode attention "
                + "(about 10 s with the defaults).")
final class DemoCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Option(names = "--tokens", paramLabel = "N", converter = SizeConverter.Int.class, defaultValue = "8192",
            description = "context length; suffixes k, m (default ${DEFAULT-VALUE})")
    private int tokens;

    @Option(names = "--dtype", paramLabel = "TYPE", converter = KvDtypesConverter.class, defaultValue = "f16",
            description = "stored element types (default ${DEFAULT-VALUE}): " + KvDtypesConverter.ALLOWED)
    private KvDtypes dtype;

    @Option(names = "--layers", paramLabel = "N", defaultValue = "32",
            description = "layers of the Llama-3-8B geometry to materialise, 1..32 (default ${DEFAULT-VALUE})")
    private int layers;

    @Option(names = "--threads", paramLabel = "N", description = "kernel threads (default: available processors)")
    private Integer threadsOption;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "5",
            description = "decode steps to time, each over every layer (default ${DEFAULT-VALUE})")
    private int steps;

    private static final double GIB = 1L << 30;

    /** This machine's physical memory in bytes, or 0 if the JVM cannot tell. */
    private static long physicalMemoryBytes() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return 0;
    }

    @Override
    public Integer call() {
        Check.range(spec, "--tokens", tokens, 1, 1 << 24);
        Check.range(spec, "--layers", layers, 1, 32);
        int threads = Check.range(spec, "--threads",
                threadsOption != null ? threadsOption : Runtime.getRuntime().availableProcessors(), 1, 64);
        Check.range(spec, "--steps", steps, 1, 1000);
        PrintWriter out = spec.commandLine().getOut();
        KvLayout layout = KvLayout.of(layers, 32, 8, 128, dtype.key(), dtype.value());
        // Refused before filling: a context larger than the machine would otherwise fill RAM until the kernel's
        // OOM killer steps in (and it may pick another process).
        long needed = layout.bytesPerToken() * tokens;
        long physical = physicalMemoryBytes();
        if (physical > 0 && needed > physical / 10 * 8) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), String.format(Locale.ROOT,
                    "--tokens %d at %s over %d layers needs %.1f GiB of KV, more than 80%% of this machine's %.1f GiB;"
                            + " at most %d tokens fit", tokens, dtype.label(), layers, needed / GIB, physical / GIB,
                    physical / 10 * 8 / layout.bytesPerToken()));
        }
        out.printf(Locale.ROOT, "KVSlab demo: Llama-3-8B geometry (%d layers, 32 q heads, 8 KV heads, head dim 128),"
                + " %s, %d tokens/block, %d-token context%n", layers, dtype, layout.tokensPerBlock(), tokens);
        RandomFloats rnd = new RandomFloats(42);
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
            out.printf(Locale.ROOT, "filled in %.2f s%n", fillSec);
            out.printf(Locale.ROOT, "  theoretical KV bytes  %,18d%n", theoretical);
            out.printf(Locale.ROOT, "  live bytes (blocks)   %,18d%n", st.liveBytes());
            out.printf(Locale.ROOT, "  reserved bytes (slabs)%,18d   overhead reserved/live %.4f, slabs %d%n",
                    st.reservedBytes(), st.overheadRatio(), st.slabs());

            float[] q = new float[layout.queryHeads() * layout.headDim()];
            float[] o = new float[q.length];
            rnd.fill(q);
            try (Attention attention = Attention.create(threads)) {
                for (int l = 0; l < layers; l++) {
                    attention.decode(seq, l, q, o);   // warm-up: JIT, thread pool, page faults
                }
                long t1 = System.nanoTime();
                for (int s = 0; s < steps; s++) {
                    for (int l = 0; l < layers; l++) {
                        attention.decode(seq, l, q, o);
                    }
                }
                double sec = (System.nanoTime() - t1) / 1e9;
                double bytesRead = (double) theoretical * steps;
                out.printf(Locale.ROOT, "decode attention: %d steps x %d layers, %d threads: %.2f ms/step,"
                        + " %.2f GB/s of KV read%n", steps, layers, threads, sec * 1e3 / steps, bytesRead / sec / 1e9);
            }
            seq.close();
        }
        out.println("store closed: native bytes held = 0 (a leak would have been reported)");
        out.flush();
        return 0;
    }
}
