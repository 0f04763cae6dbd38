package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvCacheManager;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code kvslab bench serve-sim}: a serving simulation at Llama-3-8B's attention geometry (32 query heads, 8 KV heads,
 * head size 128, f16 rows) without model weights. Synthetic K/V fill sequences of random lengths; requests arrive
 * and are admitted through {@link KvCacheManager} reservations under a KV limit, once without a pressure policy
 * (a prompt that does not fit waits) and once with compress-under-pressure; then every admitted sequence decodes
 * a few tokens (reserve, append, then per layer one batched {@link Attention#decodeBatch} over every sequence, as the
 * server's decode step; interleaved with the same step run as one {@link Attention#decode} per sequence, the
 * baseline). Reports how many sequences fit, bytes per sequence and
 * KV-bound decode tokens/s (and GB/s of KV read).
 *
 * <p>The real model has 32 layers; {@code --layers} simulates fewer so that the KV of many long sequences fits a
 * laptop: every per-layer quantity is exact, and a token of the real model costs 32 / layers times the simulated
 * one (the report prints both).
 */
@Command(name = "serve-sim", mixinStandardHelpOptions = true,
        description = "Serving simulation at Llama-3-8B attention geometry (synthetic K/V): sequences that fit under a "
                + "KV limit with and without compress-under-pressure, and KV-bound decode tokens/s. The defaults take "
                + "about 20 s of CPU on 2 cores and 2.5 GiB of memory.")
public final class ServeSimCommand implements Callable<Integer> {
    static final int Q_HEADS = 32;
    static final int KV_HEADS = 8;
    static final int HEAD_DIM = 128;
    static final int MODEL_LAYERS = 32;

    @Option(names = "--layers", defaultValue = "2", description = "layers simulated (of 32; default: ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--sequences", defaultValue = "64", description = "requests offered (default: ${DEFAULT-VALUE})")
    int sequences;

    @Option(names = "--min-tokens", defaultValue = "2048", description = "shortest context (default: ${DEFAULT-VALUE})")
    int minTokens;

    @Option(names = "--max-tokens", defaultValue = "32768", description = "longest context (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--kv-limit", converter = ByteSize.class, defaultValue = "2g",
            description = "KV memory limit (default: ${DEFAULT-VALUE})")
    long kvLimit;

    @Option(names = "--pressure", defaultValue = "compress:streamingllm:0.5",
            description = "policy for the second run (default: ${DEFAULT-VALUE})")
    String pressure;

    @Option(names = "--decode-steps", defaultValue = "3", description = "decode steps timed (default: ${DEFAULT-VALUE})")
    int decodeSteps;

    @Option(names = "--threads", defaultValue = "2", description = "attention threads (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--seed", defaultValue = "1")
    long seed;

    /** Decode figures of one kernel path: steps, tokens decoded, KV bytes read, time. */
    static final class Decode {
        int steps;
        long tokens;
        long bytesRead;
        long nanos;

        double tokensPerSecond() {
            return nanos == 0 ? 0 : tokens / (nanos / 1e9);
        }

        double gbPerSecond() {
            return nanos == 0 ? 0 : bytesRead / (double) nanos;
        }
    }

    /** One run's figures: {@code batched} is the server's path, {@code single} the per-sequence baseline. */
    record Run(String mode, int offered, int fit, long liveBytes, long tokensHeld, int compressed, double fillSeconds,
               Decode batched, Decode single) {}

    @Override
    public Integer call() {
        if (layers < 1 || layers > MODEL_LAYERS || sequences < 1 || minTokens < 1 || maxTokens < minTokens
                || decodeSteps < 0 || threads < 1) {
            System.err.println("kvslab bench serve-sim: need 1 <= layers <= 32, sequences >= 1, 1 <= min-tokens <= "
                    + "max-tokens, decode-steps >= 0, threads >= 1");
            return 2;
        }
        try {
            PressurePolicy.parse(pressure, null).close();
        } catch (RuntimeException e) {
            System.err.println("kvslab bench serve-sim: --pressure: " + e.getMessage());
            return 2;
        }
        KvLayout layout = new KvLayout(layers, Q_HEADS, KV_HEADS, HEAD_DIM, DType.F16, KvLayout.DEFAULT_TOKENS_PER_BLOCK);
        int[] lengths = new int[sequences];
        SplittableRandom r = new SplittableRandom(seed);
        long offeredBytes = 0;
        for (int i = 0; i < sequences; i++) {
            lengths[i] = minTokens + r.nextInt(maxTokens - minTokens + 1);
            offeredBytes += ServeStore.bytesFor(layout, lengths[i]);
        }
        System.out.printf(Locale.ROOT, "serve-sim: Llama-3-8B attention (%d q heads, %d kv heads, head %d, f16), %d of %d"
                        + " layers; %d requests of %d..%d tokens (%.2f GB of KV offered), limit %.2f GB%n",
                Q_HEADS, KV_HEADS, HEAD_DIM, layers, MODEL_LAYERS, sequences, minTokens, maxTokens, offeredBytes / 1e9,
                kvLimit / 1e9);
        List<Run> runs = new ArrayList<>();
        runs.add(run(layout, lengths, null));
        runs.add(run(layout, lengths, pressure));
        double scale = (double) MODEL_LAYERS / layers;
        System.out.println("| mode | sequences fit | KV live GB | tokens held | bytes/seq (sim) | bytes/seq (32 layers) "
                + "| compressed | decode tokens/s (sim) | tokens/s at 32 layers | KV read GB/s "
                + "| per-sequence decode: tokens/s (sim), GB/s | batched / per-sequence |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (Run x : runs) {
            long perSeq = x.fit == 0 ? 0 : x.liveBytes / x.fit;
            double ratio = x.single.tokensPerSecond() == 0 ? 0
                    : x.batched.tokensPerSecond() / x.single.tokensPerSecond();
            System.out.printf(Locale.ROOT, "| %s | %d / %d | %.2f | %d | %.1f MB | %.1f MB | %d | %.1f | %.1f | %.2f "
                            + "| %.1f, %.2f | %.2f |%n",
                    x.mode, x.fit, x.offered, x.liveBytes / 1e9, x.tokensHeld, perSeq / 1e6, perSeq * scale / 1e6,
                    x.compressed, x.batched.tokensPerSecond(), x.batched.tokensPerSecond() / scale,
                    x.batched.gbPerSecond(), x.single.tokensPerSecond(), x.single.gbPerSecond(), ratio);
        }
        return 0;
    }

    private Run run(KvLayout layout, int[] lengths, String spec) {
        long t0 = System.nanoTime();
        SplittableRandom r = new SplittableRandom(seed + 1);
        int chunk = 512;
        int width = KV_HEADS * HEAD_DIM;
        float[] k = new float[chunk * width];
        float[] v = new float[chunk * width];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) r.nextGaussian();
            v[i] = (float) r.nextGaussian();
        }
        try (KvStore store = KvStore.open(layout, new StoreConfig(kvLimit, 64L << 20));
             PressurePolicy policy = spec == null ? null : PressurePolicy.parse(spec, null);
             Attention attention = Attention.create(threads)) {
            KvCacheManager m = KvCacheManager.of(store);
            List<Sequence> admitted = new ArrayList<>();
            List<PressurePolicy.Candidate> candidates = new ArrayList<>();
            int compressed = 0;
            for (int i = 0; i < lengths.length; i++) {
                Sequence s = store.newSequence();
                boolean ok = m.reserve(s, lengths[i]);
                while (!ok && policy != null) {
                    long need = m.blocksToAppend(s, lengths[i]) - m.usage().headroomBlocks();
                    List<PressurePolicy.Decision> d = policy.relieve(m, candidates, need);
                    if (d.isEmpty()) {
                        break;
                    }
                    compressed += d.size();
                    ok = m.reserve(s, lengths[i]);
                }
                if (!ok) {
                    m.free(s);
                    break; // head of line: later requests wait behind it (as the server's admission does)
                }
                fill(s, lengths[i], k, v, chunk, width);
                admitted.add(s);
                candidates.add(new PressurePolicy.Candidate(s, 0, i));
            }
            double fillSeconds = (System.nanoTime() - t0) / 1e9;
            long tokensHeld = 0;
            for (Sequence s : admitted) {
                tokensHeld += s.length(0, 0);
            }
            long live = store.stats().liveBytes();
            // decode: every admitted sequence, every step: reserve a token (pressure if needed), append, attend
            float[] q = new float[Q_HEADS * HEAD_DIM];
            float[] out = new float[Q_HEADS * HEAD_DIM];
            float[] k1 = new float[width];
            float[] v1 = new float[width];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) r.nextGaussian();
            }
            System.arraycopy(k, 0, k1, 0, width);
            System.arraycopy(v, 0, v1, 0, width);
            // Each step: reserve a token for every sequence (the pressure policy acts when one does not fit), then per
            // layer append every row and attend all rows in one Attention.decodeBatch call, as the server does. The
            // same step with one Attention.decode per sequence and layer runs after it (interleaved) as the baseline.
            Decode batched = new Decode();
            Decode single = new Decode();
            int qWidth = Q_HEADS * HEAD_DIM;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment qs = arena.allocate((long) Math.max(1, admitted.size()) * qWidth * Float.BYTES, 64);
                MemorySegment outs = arena.allocate(qs.byteSize(), 64);
                for (int i = 0; i < admitted.size(); i++) {
                    MemorySegment.copy(q, 0, qs, ValueLayout.JAVA_FLOAT, (long) i * qWidth * Float.BYTES, qWidth);
                }
                long position = 0;
                for (int step = 0; step < decodeSteps; step++) {
                    for (int kind = 0; kind < 2; kind++) {
                        boolean batch = kind == 0;
                        Decode d = batch ? batched : single;
                        long d0 = System.nanoTime();
                        List<Sequence> rows = new ArrayList<>();
                        List<Integer> rowIndex = new ArrayList<>();
                        boolean acted = false;
                        for (int i = 0; i < admitted.size(); i++) {
                            Sequence s = admitted.get(i);
                            if (!m.reserve(s, 1)) {
                                if (policy == null || policy.relieve(m, candidates, 1).isEmpty() || !m.reserve(s, 1)) {
                                    continue; // no room for its token this step (not counted as decoded)
                                }
                                acted = true;
                            }
                            rows.add(s);
                            rowIndex.add(i);
                        }
                        if (acted) {
                            // a compression may have changed a sequence reserved earlier in this step (a table now
                            // ending on a full block needs a new one): reserve again, as the server does
                            for (int t = rows.size() - 1; t >= 0; t--) {
                                if (!m.reserve(rows.get(t), 1)) {
                                    rows.remove(t);
                                    rowIndex.remove(t);
                                }
                            }
                        }
                        for (int l = 0; l < layout.layers(); l++) {
                            for (int t = 0; t < rows.size(); t++) {
                                // positions survive compression
                                rows.get(t).append(l, k1, v1, (long) lengths[rowIndex.get(t)] + position);
                            }
                            if (batch && !rows.isEmpty()) {
                                long bytes = (long) rows.size() * qWidth * Float.BYTES;
                                attention.decodeBatch(l, rows, qs.asSlice(0, bytes), outs.asSlice(0, bytes));
                            } else {
                                for (Sequence s : rows) {
                                    attention.decode(s, l, q, out);
                                }
                            }
                            for (Sequence s : rows) {
                                for (int h = 0; h < KV_HEADS; h++) {
                                    d.bytesRead += 2L * s.length(l, h) * layout.rowBytes();
                                }
                            }
                        }
                        d.tokens += rows.size();
                        d.steps++;
                        d.nanos += System.nanoTime() - d0;
                        position++;
                    }
                }
            }
            for (Sequence s : admitted) {
                m.free(s);
            }
            return new Run(spec == null ? "no pressure policy (wait)" : spec, lengths.length, admitted.size(), live,
                    tokensHeld, compressed, fillSeconds, batched, single);
        }
    }

    private static void fill(Sequence s, int tokens, float[] k, float[] v, int chunk, int width) {
        for (int l = 0; l < s.layout().layers(); l++) {
            for (int at = 0; at < tokens; at += chunk) {
                int n = Math.min(chunk, tokens - at);
                long[] positions = new long[n];
                for (int i = 0; i < n; i++) {
                    positions[i] = at + i;
                }
                float[] kc = n == chunk ? k : java.util.Arrays.copyOf(k, n * width);
                float[] vc = n == chunk ? v : java.util.Arrays.copyOf(v, n * width);
                s.appendChunk(l, kc, vc, positions);
            }
        }
    }
}
