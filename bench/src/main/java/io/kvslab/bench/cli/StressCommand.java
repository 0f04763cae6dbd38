package io.kvslab.bench.cli;

import io.kvslab.bench.footprint.Json;
import io.kvslab.bench.footprint.ModelGeometry;
import io.kvslab.bench.stress.AttentionBackend;
import io.kvslab.bench.stress.ChurnStress;
import io.kvslab.bench.stress.KernelAttention;
import io.kvslab.bench.stress.LongContextStress;
import io.kvslab.DType;
import io.kvslab.KvLayout;

import java.util.Locale;
import java.util.Set;

/** {@code kvslab stress [long|churn|all]}: long-context streaming with compression, and multi-threaded churn. */
final class StressCommand implements Command {
    @Override
    public String summary() {
        return "stress tests: 1M-token streaming with decoding-time compression; multi-threaded churn with invariant checks";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab stress [long|churn|all] [options]      (default: all = long, then churn)
                  exits 1 if any invariant was violated, 2 on a usage error
                common:
                  --dtype f16|bf16|f32     stored element type, default f16
                  --seed N                 default 1
                  --attention kernel|java  decode attention backend checked against the plain-Java reference:
                                           the native kernel (default) or the reference itself (slow; churn then
                                           skips attention checks)
                  --json                   print a JSON summary instead of text
                  --no-progress            no progress bar on stderr
                long (one sequence, decoding-time compression to a fixed budget):
                  --model NAME|L:H:KV:D    geometry, default llama-3.1-8b (%s)
                  --layers N               use only the first N layers (default: all)
                  --tokens N               tokens to stream, default 1000000
                  --budget N               rows per (layer, KV head) kept by each compression, default 16384
                  --interval N             rows accumulated beyond the budget before compressing, default 8192
                  --policy NAME            compression: streamingllm (default), knorm, snapkv, adakv, pyramidkv,
                                           criticalkv, criticaladakv (io.kvslab.policy, applied layer by layer), or
                                           window (the original sinks + recent stand-in); not dbudgetkv (no bound)
                  --sinks N                sink rows always kept (streamingllm, window), default 4
                  --chunk N                tokens appended per call (1 = decode token by token), default 1
                  --attention-every N      decode attention over all layers every N tokens (0 = never), default 4096
                  --check-every N          compare with the Java reference every N attention steps, default 8
                  --kernel-threads N       threads per attention call, default: available processors
                  --tokens-per-block N     default 32
                  --slab BYTES             default 16m
                churn (many sequences on all cores):
                  --threads N              worker threads, default: available processors
                  --duration SECONDS       default 30
                  --churn-model L:H:KV:D   geometry, default 4:8:2:64
                  --churn-tokens-per-block N  default 16 (small blocks: many partial tails and boundaries)
                  --churn-slab BYTES       default 1m (small slabs: compaction has work to do)
                  --limit BYTES            store limit, default: a quarter of what all sequences could reach
                  --sequences N            sequences per thread at most, default 8
                  --max-rows N             rows per head before a sequence must evict, default 512
                  --checkpoint SECONDS     interval of the paused global accounting checks, default 1
                """.formatted(ModelGeometry.presetNames());
    }

    @Override
    public int run(String[] argv) throws UsageException {
        if (argv.length >= 1 && (argv[0].equals("--help") || argv[0].equals("-h"))) {
            System.out.println(usage());
            return 0;
        }
        Args a = new Args(argv, Set.of("json", "no-progress"));
        String which = a.positional().isEmpty() ? "all" : a.positional().getFirst();
        if (a.positional().size() > 1 || !Set.of("long", "churn", "all").contains(which)) {
            throw new UsageException("expected one of long, churn, all; got " + a.positional());
        }
        boolean doLong = !which.equals("churn");
        boolean doChurn = !which.equals("long");
        DType dtype = dtype(a.string("dtype", "f16"));
        long seed = a.longValue("seed", 1, Long.MIN_VALUE, Long.MAX_VALUE);
        boolean json = a.flag("json");
        boolean progress = !a.flag("no-progress");
        String backend = a.string("attention", "kernel");
        if (!backend.equals("kernel") && !backend.equals("java")) {
            throw new UsageException("--attention must be kernel or java, got '" + backend + "'");
        }
        int cores = Math.min(64, Runtime.getRuntime().availableProcessors());

        LongContextStress.Config longCfg = null;
        int kernelThreads = cores;
        if (doLong) {
            ModelGeometry model = model(a.string("model", "llama-3.1-8b"));
            int layers = a.intValue("layers", model.layers(), 1, model.layers());
            model = model.withLayers(layers);
            try {
                longCfg = new LongContextStress.Config(model, dtype, a.intValue("tokens-per-block", 32, 1, 65536),
                        a.longValue("slab", 16L << 20, 4096, 1L << 34),
                        a.longValue("tokens", 1_000_000, 1, 1L << 40),
                        a.intValue("budget", 16384, 1, 1 << 28), a.intValue("interval", 8192, 1, 1 << 28),
                        a.intValue("sinks", 4, 0, 1 << 20), a.intValue("chunk", 1, 1, 1 << 20),
                        a.intValue("attention-every", 4096, 0, Integer.MAX_VALUE),
                        a.intValue("check-every", 8, 1, Integer.MAX_VALUE), seed,
                        a.string("policy", "streamingllm").toLowerCase(Locale.ROOT));
                kernelThreads = a.intValue("kernel-threads", cores, 1, 64);
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            }
        }
        ChurnStress.Config churnCfg = null;
        if (doChurn) {
            ModelGeometry g = model(a.string("churn-model", "4:8:2:64"));
            KvLayout layout = g.layout(dtype, a.intValue("churn-tokens-per-block", 16, 1, 65536));
            try {
                churnCfg = new ChurnStress.Config(layout,
                        a.intValue("threads", Runtime.getRuntime().availableProcessors(), 1, 4096),
                        a.doubleValue("duration", 30, 0, 7 * 24 * 3600.0),
                        a.longValue("limit", 0, 0, Long.MAX_VALUE), a.longValue("churn-slab", 1L << 20, 1, 1L << 34),
                        a.intValue("sequences", 8, 1, 1 << 16), a.intValue("max-rows", 512, 1, 1 << 24),
                        a.doubleValue("checkpoint", 1, 0.01, 3600), seed);
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            }
        }
        a.finish();

        boolean ok = true;
        Json out = Json.object();
        if (longCfg != null) {
            if (!json) {
                System.out.printf(Locale.ROOT, "long-context: streaming %,d tokens, peak bound %s live / %s reserved "
                                + "(budget + interval + chunk - 1 = %,d rows per head, whole blocks, whole slabs)%n",
                        longCfg.tokens(), io.kvslab.bench.footprint.Bytes.human(longCfg.liveBoundBytes()),
                        io.kvslab.bench.footprint.Bytes.human(longCfg.reservedBoundBytes()), longCfg.maxRowsPerHead());
            }
            LongContextStress.Result r;
            try (KernelAttention kernel = backend.equals("kernel") ? new KernelAttention(kernelThreads) : null) {
                AttentionBackend attention = kernel != null ? kernel : AttentionBackend.reference();
                r = new LongContextStress(longCfg, attention, progress ? System.err : null).run();
            }
            ok &= r.ok();
            if (json) {
                out.put("long", r.json());
            } else {
                System.out.println(r.summary());
            }
        }
        if (churnCfg != null) {
            if (!json) {
                System.out.printf(Locale.ROOT, "churn: %d threads for %.0f s...%n", churnCfg.threads(),
                        churnCfg.durationSeconds());
            }
            ChurnStress.Result r;
            // Workers already use every core: one kernel thread per call.
            try (KernelAttention kernel = backend.equals("kernel") ? new KernelAttention(1) : null) {
                r = new ChurnStress(churnCfg, kernel).run();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                System.err.println("kvslab stress: interrupted");
                return 1;
            }
            ok &= r.ok();
            if (json) {
                out.put("churn", r.json());
            } else {
                System.out.println(r.summary());
            }
        }
        if (json) {
            out.put("ok", ok);
            System.out.println(out);
        } else {
            System.out.println(ok ? "stress: all invariants held" : "stress: INVARIANTS VIOLATED");
        }
        return ok ? 0 : 1;
    }

    private static DType dtype(String s) throws UsageException {
        try {
            return DType.valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--dtype: unknown dtype '" + s + "'; use f32, f16 or bf16");
        }
    }

    private static ModelGeometry model(String s) throws UsageException {
        try {
            return ModelGeometry.parse(s);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }
}
