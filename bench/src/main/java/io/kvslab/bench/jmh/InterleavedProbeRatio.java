package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.bench.report.Stats;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Decode attention against the read probe, interleaved in one process: probe pass, decode steps, probe pass, decode
 * steps, ... for every element type in turn, so that both see the same machine. On the shared 2-core VM the probe
 * alone moved 10-22 GB/s within minutes, and the JMH suite ({@link AttentionBenchRunner}) measures probe and decode
 * in separate forks seconds apart, so its ratio carries that drift; here each decode sample has a probe sample
 * taken just before it, and the ratio is taken of the medians (issue #13: "measure probe and decode interleaved
 * (A B A B ...) and take the ratio of medians").
 *
 * <p>A sample is one probe pass over {@link #PROBE_MIB} MiB (by default), or as many decode steps as read about the same bytes
 * (a 32k f16 layer is 128 MiB, so 8 steps), both as milliseconds per GiB read. The decode step is
 * {@link DecodeAttentionBench#decode} (the public {@code Attention.decode} over a store filled in 1,024-token
 * chunks by default, or token by token), the probe {@link BandwidthProbeBench#probe}; both run on the library's pool
 * with the same thread count.
 */
public final class InterleavedProbeRatio {
    /** The probe's default buffer, as in the JMH suite: far larger than any cache. */
    public static final int PROBE_MIB = 1024;
    /** Rows per append when filling the stores by default: a chunked prefill, as {@link DecodeAttentionBench}'s setup. */
    public static final int APPEND_TOKENS = 1024;

    private InterleavedProbeRatio() {}

    /** The block size the stores use unless told otherwise (the JMH suite's and most docs' 32). */
    public static final int TOKENS_PER_BLOCK = 32;

    /**
     * One configuration's samples (element type, tokens per block): probe and decode ms per GiB, index i of each
     * taken back to back.
     */
    public record Row(String dtype, int tokensPerBlock, int context, int threads, int stepsPerSample,
                      double[] probeMsPerGiB, double[] decodeMsPerGiB) {
        /** Median probe ms per GiB over median decode ms per GiB: the decode's fraction of the read bandwidth. */
        public double ratioOfMedians() {
            return Stats.median(probeMsPerGiB) / Stats.median(decodeMsPerGiB);
        }

        /** Ratios of each back-to-back pair, sorted. */
        public double[] pairRatios() {
            double[] r = new double[probeMsPerGiB.length];
            for (int i = 0; i < r.length; i++) {
                r[i] = probeMsPerGiB[i] / decodeMsPerGiB[i];
            }
            Arrays.sort(r);
            return r;
        }

        /** GB/s (10^9 bytes) read, from a median of ms per GiB. */
        static double gbps(double msPerGiB) {
            return (1L << 30) / (msPerGiB * 1e6);
        }
    }

    /** Everything one run measured. */
    public record Report(int rounds, int warmupRounds, int appendTokens, List<Row> rows) {
        public String table() {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "Decode attention vs read probe, interleaved in one process "
                    + "(%d rounds after %d warm-up; a round = probe, decode for each dtype; stores filled %s)%n", rounds,
                    warmupRounds, appendTokens == 1 ? "token by token" : appendTokens + " rows per append"));
            sb.append(String.format(Locale.ROOT, "%9s %5s %8s %7s %6s %11s %12s %16s %22s%n", "context", "dtype",
                    "tok/blk", "threads", "steps", "probe GB/s", "decode GB/s", "ratio of medians",
                    "pair ratios p25/50/75"));
            for (Row r : rows) {
                double[] pr = r.pairRatios();
                sb.append(String.format(Locale.ROOT, "%9d %5s %8d %7d %6d %11.2f %12.2f %16.3f %8.3f/%.3f/%.3f%n",
                        r.context(), r.dtype(), r.tokensPerBlock(), r.threads(), r.stepsPerSample(),
                        Row.gbps(Stats.median(r.probeMsPerGiB())),
                        Row.gbps(Stats.median(r.decodeMsPerGiB())), r.ratioOfMedians(), Stats.percentile(pr, 0.25),
                        Stats.percentile(pr, 0.5), Stats.percentile(pr, 0.75)));
            }
            return sb.toString();
        }

        public String json() {
            StringBuilder sb = new StringBuilder();
            sb.append("{\"benchmark\":\"decode-vs-probe\",\"rounds\":").append(rounds).append(",\"warmupRounds\":")
                    .append(warmupRounds).append(",\"appendTokens\":").append(appendTokens).append(",\"rows\":[");
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                double[] pr = r.pairRatios();
                sb.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                        "{\"context\":%d,\"dtype\":\"%s\",\"tokensPerBlock\":%d,\"threads\":%d,\"stepsPerSample\":%d,"
                                + "\"probeMsPerGiBMedian\":%.4f,\"decodeMsPerGiBMedian\":%.4f,\"ratioOfMedians\":%.4f,"
                                + "\"pairRatioP25\":%.4f,\"pairRatioMedian\":%.4f,\"pairRatioP75\":%.4f}",
                        r.context(), r.dtype(), r.tokensPerBlock(), r.threads(), r.stepsPerSample(),
                        Stats.median(r.probeMsPerGiB()),
                        Stats.median(r.decodeMsPerGiB()), r.ratioOfMedians(), Stats.percentile(pr, 0.25), Stats.percentile(pr, 0.5),
                        Stats.percentile(pr, 0.75)));
            }
            return sb.append("]}").toString();
        }
    }

    /**
     * Sets up {@code layers} stores per configuration (each element type at each block size of
     * {@code tokensPerBlock}; each store one filled layer, as {@link DecodeAttentionBench} fills it,
     * {@code appendTokens} rows per append) and the probe buffer, then runs {@code warmup + rounds} rounds, every
     * configuration once per round after its own probe pass; progress (one line per round) goes to {@code progress}.
     *
     * <p>A sample's decode steps go round the layers, so a layer is read again only after the others, as a model
     * reads its layers once per token; with one layer, consecutive steps re-read the same bytes, and a part of them
     * may still be in the last-level cache. {@code appendTokens} = {@value #APPEND_TOKENS} is a prompt's chunked
     * prefill (each head's blocks in runs); 1 fills token by token, as generation appends (every head's next block
     * allocated at the same moment, so the heads' blocks interleave). Several block sizes in one run compare them
     * on the same machine state (issue #13: "revisit the default tokens per block").
     */
    public static Report run(int context, List<DType> dtypes, List<Integer> tokensPerBlock, int threads, int layers,
                             int appendTokens, int probeMib, int rounds, int warmup, PrintStream progress) {
        List<DType> types = new ArrayList<>();
        List<Integer> blocks = new ArrayList<>();
        for (DType d : dtypes) {
            for (int tpb : tokensPerBlock) {
                types.add(d);
                blocks.add(tpb);
            }
        }
        int configs = types.size();
        BandwidthProbeBench probe = new BandwidthProbeBench();
        probe.threads = threads;
        probe.mib = probeMib;
        List<List<DecodeAttentionBench>> decodes = new ArrayList<>();
        probe.setUp();   // before the try: a probe that could not allocate has nothing to tear down
        try {
            for (int c = 0; c < configs; c++) {
                List<DecodeAttentionBench> perLayer = new ArrayList<>();
                decodes.add(perLayer);
                for (int l = 0; l < layers; l++) {
                    DecodeAttentionBench b = new DecodeAttentionBench();
                    b.context = context;
                    b.dtype = types.get(c).name();
                    b.threads = threads;
                    b.tokensPerBlock = blocks.get(c);
                    b.appendTokens = appendTokens;
                    progress.printf(Locale.ROOT, "filling %d tokens of %s, %d per block, %d per append (layer %d of "
                            + "%d)...%n", context, types.get(c), blocks.get(c), appendTokens, l + 1, layers);
                    b.setUp();
                    perLayer.add(b);
                }
            }
            long probeBytes = (long) probeMib << 20;
            int[] steps = new int[configs];
            for (int i = 0; i < configs; i++) {
                steps[i] = (int) Math.max(1, Math.round((double) probeBytes
                        / DecodeAttentionBench.kvBytes(context, types.get(i))));
            }
            double[][] p = new double[configs][rounds];
            double[][] d = new double[configs][rounds];
            double gib = 1L << 30;
            for (int round = -warmup; round < rounds; round++) {
                StringBuilder line = new StringBuilder(round < 0 ? "warm-up" : "round " + (round + 1));
                for (int i = 0; i < configs; i++) {
                    long t0 = System.nanoTime();
                    probe.probe();
                    long t1 = System.nanoTime();
                    List<DecodeAttentionBench> perLayer = decodes.get(i);
                    for (int s = 0; s < steps[i]; s++) {
                        perLayer.get(s % layers).decode();
                    }
                    long t2 = System.nanoTime();
                    double pm = (t1 - t0) / 1e6 * gib / probeBytes;
                    double dm = (t2 - t1) / 1e6 * gib / ((double) steps[i] * DecodeAttentionBench.kvBytes(context,
                            types.get(i)));
                    if (round >= 0) {
                        p[i][round] = pm;
                        d[i][round] = dm;
                    }
                    line.append(String.format(Locale.ROOT, "  %s/%d %.3f", types.get(i), blocks.get(i), pm / dm));
                }
                progress.println(line);
            }
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < configs; i++) {
                rows.add(new Row(types.get(i).name(), blocks.get(i), context, threads, steps[i], p[i], d[i]));
            }
            return new Report(rounds, warmup, appendTokens, rows);
        } finally {
            for (List<DecodeAttentionBench> perLayer : decodes) {
                for (DecodeAttentionBench b : perLayer) {
                    b.tearDown();
                }
            }
            probe.tearDown();
        }
    }
}
