package io.kvslab.bench.cli;

import io.kvslab.KvSlabException;
import io.kvslab.bench.footprint.Bytes;
import io.kvslab.bench.footprint.FootprintPlot;
import io.kvslab.bench.footprint.FootprintPolicy;
import io.kvslab.bench.footprint.FootprintReport;
import io.kvslab.bench.footprint.FootprintRow;
import io.kvslab.bench.footprint.FootprintRunner;
import io.kvslab.bench.footprint.Json;
import io.kvslab.bench.footprint.ModelGeometry;
import io.kvslab.DType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code kvslab footprint}: theoretical vs reserved vs live KV bytes over models x contexts x dtypes x policies. */
final class FootprintCommand implements Command {
    @Override
    public String summary() {
        return "KV memory footprint: theoretical vs live vs reserved bytes per model, context, dtype, policy";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab footprint [options]
                  --models LIST       presets (%s) or layers:heads:kvHeads:headDim;
                                      default: all presets
                  --contexts LIST     context lengths in tokens (k, m suffixes are binary), default 4k,32k,128k,1m
                  --dtypes LIST       f32, f16, bf16; default f16,f32
                  --policies LIST     full (dense), window (sinks + recent rows, the original stand-in), and the
                                      policies of io.kvslab.policy: streamingllm, knorm, snapkv, adakv, pyramidkv,
                                      criticalkv, criticaladakv, dbudgetkv; default full,streamingllm,snapkv,adakv
                  --kept F            fraction of each head the policies keep, default 0.25 (not dbudgetkv)
                  --sinks N           sink rows of streamingllm and window, default 4
                  --limit BYTES       memory limit of the measured stores; rows whose dense fill would exceed it
                                      are computed analytically; default 8g
                  --slab BYTES        slab size, default 16m
                  --tokens-per-block N  default 32
                  --seed N            synthetic data seed, default 1
                  --json              print JSON instead of the table
                  --plot FILE.png     also write a PNG plot (reserved bytes vs context)
                """.formatted(ModelGeometry.presetNames());
    }

    @Override
    public int run(String[] argv) throws UsageException {
        if (argv.length == 1 && (argv[0].equals("--help") || argv[0].equals("-h"))) {
            System.out.println(usage());
            return 0;
        }
        Args a = new Args(argv, Set.of("json"));
        List<ModelGeometry> models = new ArrayList<>();
        String modelSpec = a.string("models", null);
        if (modelSpec == null) {
            models.addAll(ModelGeometry.PRESETS);
        } else {
            for (String m : split(modelSpec)) {
                try {
                    models.add(ModelGeometry.parse(m));
                } catch (IllegalArgumentException e) {
                    throw new UsageException("--models: " + e.getMessage());
                }
            }
        }
        List<Integer> contexts = new ArrayList<>();
        for (String c : split(a.string("contexts", "4k,32k,128k,1m"))) {
            long t;
            try {
                t = Args.parseSize(c);
            } catch (NumberFormatException | ArithmeticException e) {
                throw new UsageException("--contexts: '" + c + "' is not a token count (e.g. 4096, 32k, 1m)");
            }
            if (t < 1 || t > (1 << 28)) {
                throw new UsageException("--contexts: each length must be in [1, 268435456] tokens, got " + t);
            }
            contexts.add((int) t);
        }
        List<DType> dtypes = new ArrayList<>();
        for (String d : split(a.string("dtypes", "f16,f32"))) {
            try {
                dtypes.add(DType.valueOf(d.toUpperCase(Locale.ROOT)));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--dtypes: unknown dtype '" + d + "'; use f32, f16 or bf16");
            }
        }
        double kept = a.doubleValue("kept", 0.25, 1e-6, 1.0);
        int sinks = a.intValue("sinks", 4, 0, 1 << 20);
        List<FootprintPolicy> policies = new ArrayList<>();
        for (String p : split(a.string("policies", "full,streamingllm,snapkv,adakv"))) {
            try {
                policies.add(FootprintPolicy.parse(p, kept, sinks));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--policies: " + e.getMessage());
            }
        }
        long limit = a.longValue("limit", 8L << 30, 1L << 20, Long.MAX_VALUE);
        long slab = a.longValue("slab", 16L << 20, 4096, 1L << 34);
        int tpb = a.intValue("tokens-per-block", 32, 1, 65536);
        long seed = a.longValue("seed", 1, Long.MIN_VALUE, Long.MAX_VALUE);
        boolean json = a.flag("json");
        String plot = a.string("plot", null);
        a.finish();

        FootprintRunner.Config cfg = new FootprintRunner.Config(models, contexts, dtypes, policies, limit, slab, tpb,
                seed);
        if (!json) {
            System.out.println("memory limit " + Bytes.human(limit) + ", slab " + Bytes.human(slab) + ", "
                    + tpb + " tokens/block; rows whose dense fill exceeds the limit are analytic\n");
            System.out.println(FootprintReport.header());
        }
        List<FootprintRow> rows;
        try {
            rows = new FootprintRunner(cfg).run(r -> {
                if (!json) {
                    System.out.println(FootprintReport.line(r));
                }
            });
        } catch (KvSlabException e) {
            System.err.println("kvslab footprint: " + e.getMessage());
            return 1;
        }
        if (json) {
            Json settings = Json.object().put("limitBytes", limit).put("slabBytes", slab).put("tokensPerBlock", tpb)
                    .put("keptFraction", kept).put("sinks", sinks).put("seed", seed);
            System.out.println(FootprintReport.json(rows, settings));
        }
        if (plot != null) {
            try {
                FootprintPlot.write(rows, limit, Path.of(plot));
            } catch (IOException e) {
                System.err.println("kvslab footprint: could not write the plot to " + plot + ": " + e.getMessage());
                return 1;
            }
            System.err.println("plot written to " + plot);
        }
        return 0;
    }

    private static List<String> split(String s) {
        List<String> out = new ArrayList<>();
        for (String p : s.split(",")) {
            if (!p.isBlank()) {
                out.add(p.trim());
            }
        }
        return out;
    }
}
