package io.kvslab.bench.cli;

import io.kvslab.KvLayout;
import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.Progress;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.stress.ChurnStress;
import io.kvslab.bench.stress.PerThreadKernelAttention;
import io.kvslab.bench.stress.LongContextConfig;
import io.kvslab.bench.stress.LongContextResult;
import io.kvslab.bench.stress.LongContextStress;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;

/** Runs the stress tests a {@code kvslab stress} command line asked for and prints the summaries. */
final class StressRun {
    private final CommandSpec spec;
    private final StressOptions common;
    private final int cores = Math.min(64, Runtime.getRuntime().availableProcessors());

    StressRun(CommandSpec spec, StressOptions common) {
        this.spec = spec;
        this.common = common;
    }

    /** Runs long (if {@code longOptions} is non-null), then churn (if {@code churnOptions} is non-null). */
    int run(LongStressOptions longOptions, ChurnStressOptions churnOptions) throws InterruptedException {
        String backend = Check.choice(spec, "--attention", common.attention, List.of("kernel", "java"));
        LongContextConfig longCfg = longOptions == null ? null : longConfig(longOptions);
        int kernelThreads = longOptions == null || longOptions.kernelThreads == null ? cores
                : Check.range(spec, "--kernel-threads", longOptions.kernelThreads, 1, 64);
        ChurnStress.Config churnCfg = churnOptions == null ? null : churnConfig(churnOptions);
        PrintWriter out = spec.commandLine().getOut();
        PrintStream progress = !common.json && Progress.wanted(common.quiet) ? System.err : null;
        boolean ok = true;
        Json json = Json.object();
        if (longCfg != null) {
            if (!common.json) {
                out.printf(Locale.ROOT, "long-context: streaming %,d tokens over %d layers of %s, peak bound %s live "
                                + "/ %s reserved (budget + interval + chunk - 1 = %,d rows per head)%n",
                        longCfg.tokens(), longCfg.model().layers(), longCfg.model().name(),
                        Bytes.human(longCfg.liveBoundBytes()), Bytes.human(longCfg.reservedBoundBytes()),
                        longCfg.maxRowsPerHead());
                out.flush();
            }
            LongContextResult r;
            try (PerThreadKernelAttention kernel = backend.equals("kernel") ? new PerThreadKernelAttention(kernelThreads) : null) {
                SequenceAttention attention = kernel != null ? kernel : new ReferenceAttention();
                r = new LongContextStress(longCfg, attention, progress).run();
            }
            ok &= r.ok();
            if (common.json) {
                json.put("long", r.json());
            } else {
                out.println(r.summary());
                out.flush();
            }
        }
        if (churnCfg != null) {
            if (!common.json) {
                out.printf(Locale.ROOT, "churn: %d threads for %.0f s...%n", churnCfg.threads(),
                        churnCfg.durationSeconds());
                out.flush();
            }
            ChurnStress.Result r;
            // Workers already use every core: one kernel thread per call.
            try (PerThreadKernelAttention kernel = backend.equals("kernel") ? new PerThreadKernelAttention(1) : null;
                 Progress p = Progress.start(progress, "churn", Math.round(churnCfg.durationSeconds()), "s");
                 Ticker ticker = new Ticker(p)) {
                r = new ChurnStress(churnCfg, kernel).run();
            }
            ok &= r.ok();
            if (common.json) {
                json.put("churn", r.json());
            } else {
                out.println(r.summary());
            }
        }
        if (common.json) {
            json.put("ok", ok);
            out.println(json);
        } else {
            out.println(ok ? "stress: all invariants held" : "stress: INVARIANTS VIOLATED");
        }
        return ok ? 0 : 1;
    }

    private LongContextConfig longConfig(LongStressOptions o) {
        ModelGeometry model = o.geometry(common.full);
        long tokens = Check.range(spec, "--tokens", o.tokens(common.full), 1, 1L << 40);
        return new LongContextConfig(model, common.dtype, o.tokensPerBlock, o.slab, tokens, o.budget,
                o.interval, o.sinks, o.chunk, o.attentionEvery, o.checkEvery, common.seed,
                o.policy.toLowerCase(Locale.ROOT));
    }

    private ChurnStress.Config churnConfig(ChurnStressOptions o) {
        KvLayout layout = ModelGeometry.parse(o.model).layout(common.dtype.key(),
                Check.range(spec, "--churn-tokens-per-block", o.tokensPerBlock, 1, 65536))
                .withDtypes(common.dtype.key(), common.dtype.value());
        int threads = Check.range(spec, "--threads", o.threads != null ? o.threads : cores, 1, 4096);
        double duration = Check.range(spec, "--duration", o.duration(common.full), 0, 7 * 24 * 3600.0);
        return new ChurnStress.Config(layout, threads, duration, o.limit, o.slab, o.sequences, o.maxRows,
                Check.range(spec, "--checkpoint", o.checkpoint, 0.01, 3600), common.seed);
    }

    /** Moves a time-based progress bar once a second while churn runs (churn has no step count). */
    private static final class Ticker implements AutoCloseable {
        private final Thread thread;

        Ticker(Progress p) {
            long start = System.nanoTime();
            thread = Thread.ofPlatform().daemon().name("kvslab-progress").start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    p.stepTo((System.nanoTime() - start) / 1_000_000_000L);
                    try {
                        Thread.sleep(500);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        @Override
        public void close() {
            thread.interrupt();
        }
    }
}
