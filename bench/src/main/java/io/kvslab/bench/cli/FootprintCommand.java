package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.footprint.FootprintPlot;
import io.kvslab.bench.footprint.FootprintPolicy;
import io.kvslab.bench.footprint.FootprintReport;
import io.kvslab.bench.footprint.FootprintRow;
import io.kvslab.bench.footprint.FootprintRunner;
import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code kvslab footprint}: theoretical vs reserved vs live KV bytes over models x contexts x dtypes x policies. */
@Command(name = "footprint", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"KV memory footprint: theoretical vs live vs reserved bytes per model, context, dtype and "
                + "policy. Rows whose dense fill fits under --limit are measured on a real store; the others are "
                + "computed with the same accounting.",
                "The defaults take about 1 min on 2 cores; --full (f16 and f32, an 8 GiB limit) about 8 min."})
final class FootprintCommand implements Callable<Integer> {
    private static final String FULL_DTYPES = "f16,f32";
    private static final long FULL_LIMIT = 8L << 30;
    private static final long DEFAULT_LIMIT = 128L << 20;

    @Spec
    private CommandSpec spec;

    @Option(names = "--models", paramLabel = "LIST", split = ",",
            description = "presets or layers:heads:kvHeads:headDim (default: all presets)")
    private List<String> models;

    @Option(names = "--contexts", paramLabel = "LIST", split = ",", defaultValue = "4k,32k,128k,1m",
            converter = SizeConverter.Int.class,
            description = "context lengths in tokens (k, m suffixes are binary; default ${DEFAULT-VALUE})")
    private List<Integer> contexts;

    @Option(names = "--dtypes", paramLabel = "LIST", split = ",", converter = KvDtypesConverter.class,
            description = "element types (default f16; f16,f32 with --full); each item: " + KvDtypesConverter.ALLOWED)
    private List<KvDtypes> dtypes;

    @Option(names = "--policies", paramLabel = "LIST", split = ",", defaultValue = "full,streamingllm,snapkv,adakv",
            description = "full (dense) or policies of io.kvslab.policy: streamingllm, knorm, snapkv, adakv, "
                    + "pyramidkv, criticalkv, criticaladakv, dbudgetkv (default ${DEFAULT-VALUE})")
    private List<String> policies;

    @Option(names = "--kept", paramLabel = "F", defaultValue = "0.25",
            description = "fraction of each head the policies keep (not dbudgetkv; default ${DEFAULT-VALUE})")
    private double kept;

    @Option(names = "--sinks", paramLabel = "N", defaultValue = "4",
            description = "sink rows of streamingllm (default ${DEFAULT-VALUE})")
    private int sinks;

    @Option(names = "--limit", paramLabel = "BYTES", converter = SizeConverter.class,
            description = "memory limit of the measured stores; rows whose dense fill would exceed it are analytic "
                    + "(default 128m; 8g with --full)")
    private Long limit;

    @Option(names = "--slab", paramLabel = "BYTES", converter = SizeConverter.class, defaultValue = "16m",
            description = "slab size (default ${DEFAULT-VALUE})")
    private long slab;

    @Option(names = "--tokens-per-block", paramLabel = "N", defaultValue = "32",
            description = "default ${DEFAULT-VALUE}")
    private int tokensPerBlock;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "synthetic data seed (default 1)")
    private long seed;

    @Option(names = "--full", description = "the big run: f16 and f32, 8 GiB limit (more rows measured)")
    private boolean full;

    @Option(names = "--json", description = "print JSON instead of the table (no progress bar)")
    private boolean json;

    @Option(names = {"-q", "--quiet"}, description = "no progress bar")
    private boolean quiet;

    @Option(names = "--plot", paramLabel = "FILE.png", description = "also write a PNG plot (reserved bytes vs "
            + "context); checked before the run")
    private Path plot;

    @Override
    public Integer call() throws IOException {
        FootprintRunner.Config cfg = config();
        if (plot != null) {
            Check.outputFile(spec, "--plot", plot);
        }
        PrintWriter out = spec.commandLine().getOut();
        if (!json) {
            out.println("memory limit " + Bytes.human(cfg.limitBytes()) + ", slab " + Bytes.human(slab) + ", "
                    + tokensPerBlock + " tokens/block; rows whose dense fill exceeds the limit are analytic\n");
            out.println(FootprintReport.header());
            out.flush();
        }
        long total = (long) cfg.models().size() * cfg.contexts().size() * cfg.dtypes().size()
                * cfg.policies().size();
        List<FootprintRow> rows;
        try (Progress p = !json && Progress.wanted(quiet) ? Progress.start(System.err, "footprint", total, "rows")
                : Progress.NONE) {
            rows = new FootprintRunner(cfg).run(r -> {
                p.step();
                p.status(r.model() + " " + r.contextTokens());
                if (!json) {
                    out.println(FootprintReport.line(r));
                    out.flush();
                }
            });
        }
        if (json) {
            Json settings = Json.object().put("limitBytes", cfg.limitBytes()).put("slabBytes", slab)
                    .put("tokensPerBlock", tokensPerBlock).put("keptFraction", kept).put("sinks", sinks)
                    .put("seed", seed);
            out.println(FootprintReport.json(rows, settings));
        }
        if (plot != null) {
            FootprintPlot.write(rows, cfg.limitBytes(), plot);
            spec.commandLine().getErr().println("plot written to " + plot);
        }
        return 0;
    }

    private FootprintRunner.Config config() {
        List<ModelGeometry> geometries = new ArrayList<>();
        if (models == null) {
            geometries.addAll(ModelGeometry.PRESETS);
        } else {
            for (String m : models) {
                geometries.add(ModelGeometry.parse(m));
            }
        }
        for (int c : contexts) {
            Check.range(spec, "--contexts", c, 1, 1 << 28);
        }
        Check.range(spec, "--kept", kept, 1e-6, 1.0);
        Check.range(spec, "--sinks", sinks, 0, 1 << 20);
        long lim = Check.range(spec, "--limit", limit != null ? limit : full ? FULL_LIMIT : DEFAULT_LIMIT, 1L << 20,
                Long.MAX_VALUE);
        Check.range(spec, "--slab", slab, 4096, 1L << 34);
        Check.range(spec, "--tokens-per-block", tokensPerBlock, 1, 65536);
        List<FootprintPolicy> ps = new ArrayList<>();
        for (String p : policies) {
            ps.add(FootprintPolicy.parse(p, kept, sinks));
        }
        List<KvDtypes> types = dtypes != null ? dtypes.stream().distinct().toList()
                : (full ? List.of(FULL_DTYPES.split(",")) : List.of("f16")).stream().map(KvDtypesConverter::parse)
                .toList();
        return new FootprintRunner.Config(geometries, contexts, types, ps, lim, slab, tokensPerBlock, seed);
    }
}
