package io.kvslab.bench.cli;

import io.kvslab.Attention;
import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.cli.types.QueryPrecisionConverter;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.TextFile;
import io.kvslab.bench.eval.fidelity.FidelityConfig;
import io.kvslab.bench.eval.fidelity.FidelityEval;
import io.kvslab.bench.eval.fidelity.FidelityReport;
import io.kvslab.bench.eval.pod.PodEvalConfig;
import io.kvslab.bench.eval.pod.PodEvaluation;
import io.kvslab.bench.eval.pod.PodReport;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.report.Progress;
import io.kvslab.policy.Policies;
import io.kvslab.policy.WindowPooling;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code kvslab eval fidelity}: compression policies on the real model against the full cache. */
@Command(name = "fidelity", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compress each text's context with every policy and budget, teacher-force the continuation and "
                + "compare with the full-cache run (docs/fidelity.md): mean KL, top-1 agreement, delta perplexity, KV "
                + "bytes kept, per-head output perturbation, and CriticalKV vs its base selection head by head.",
                "The defaults (stories260K, 16 texts) take about a minute of CPU on 2 cores (62 s measured); each "
                + "--kv-dtype other than f32 adds about as much again."})
final class FidelityCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Mixin
    private ModelFiles modelFiles;

    @Option(names = "--texts", paramLabel = "FILE", description = "evaluate your own texts instead of the built-in "
            + "set: UTF-8, one text per line, or JSON Lines with a \"text\" field (.jsonl, or lines starting with {)")
    private Path textsFile;

    @Option(names = "--stories", paramLabel = "N", description = "texts to use, the first ones long enough (default "
            + FidelityConfig.DEFAULT_STORIES + " of the built-in set; every text of a --texts file)")
    private Integer stories;

    @Option(names = "--continuation", paramLabel = "N", defaultValue = "" + FidelityConfig.DEFAULT_CONTINUATION,
            description = "teacher-forced tokens after the context (default ${DEFAULT-VALUE})")
    private int continuation;

    @Option(names = "--min-context", paramLabel = "N", defaultValue = "" + FidelityConfig.DEFAULT_MIN_CONTEXT,
            description = "skip texts with a shorter context (default ${DEFAULT-VALUE})")
    private int minContext;

    @Option(names = "--max-context", paramLabel = "N", description = "cut longer texts to N context tokens "
            + "(default: no cut)")
    private Integer maxContext;

    @Option(names = "--window", paramLabel = "N", defaultValue = "" + FidelityConfig.DEFAULT_WINDOW,
            description = "observation window of the SnapKV-family policies (default ${DEFAULT-VALUE})")
    private int window;

    @Option(names = "--budgets", paramLabel = "LIST", split = ",", defaultValue = "0.1,0.25,0.5,dynamic",
            description = "fractions (0.25 or 25%%) and/or 'dynamic' (default ${DEFAULT-VALUE})")
    private List<String> budgets;

    @Option(names = "--policies", paramLabel = "LIST", split = ",", defaultValue = "all",
            description = "policy names or 'all' (default all: streamingllm, knorm, snapkv, adakv, pyramidkv, "
                    + "criticalkv, criticaladakv, dbudgetkv, criticaldbudgetkv; also criticalkv-l2, criticaladakv-l2)")
    private List<String> policies;

    @Option(names = "--kv-dtype", paramLabel = "LIST", split = ",", defaultValue = "f32",
            converter = KvDtypesConverter.class, description = "element types of the compressed runs' stores "
            + "(default ${DEFAULT-VALUE}; the reference is always f32): each type other than f32 adds a row for the "
            + "quantisation alone and runs every policy and budget on it; each item: " + KvDtypesConverter.ALLOWED)
    private List<KvDtypes> kvDtypes;

    @Option(names = "--query-precision", paramLabel = "MODE", defaultValue = "exact",
            converter = QueryPrecisionConverter.class, description = "decode attention's arithmetic on quantised "
            + "rows to evaluate (default ${DEFAULT-VALUE}): other than exact, each quantised --kv-dtype also gets a "
            + "whole-cache run in that mode, compared with the f32 reference and with the exact run on the same type "
            + "(native attention only); " + QueryPrecisionConverter.ALLOWED)
    private Attention.QueryPrecision queryPrecision;

    @Option(names = "--pool", paramLabel = "KIND", defaultValue = "max",
            description = "pooling of the SnapKV-family window scores: ${COMPLETION-CANDIDATES} (default "
                    + "${DEFAULT-VALUE})")
    private WindowPooling pool;

    @Option(names = "--kernel", paramLabel = "N", defaultValue = "7",
            description = "pooling kernel, odd (default ${DEFAULT-VALUE}; 1 = no pooling)")
    private int kernel;

    @Option(names = "--tokens-per-block", paramLabel = "N", defaultValue = "" + FidelityConfig.DEFAULT_TOKENS_PER_BLOCK,
            description = "store block size (default ${DEFAULT-VALUE})")
    private int tokensPerBlock;

    @Option(names = "--attention", paramLabel = "NAME", defaultValue = "native",
            description = "native (the library kernel, default) or java (plain Java over the rows)")
    private String attention;

    @Option(names = "--json", description = "print the report as JSON instead of tables (no progress bar)")
    private boolean json;

    @Option(names = {"-q", "--quiet"}, description = "no progress bar")
    private boolean quiet;

    @Option(names = "--out", paramLabel = "DIR", description = "also write DIR/fidelity.json, DIR/fidelity-table.md "
            + "and the PNG plots (and DIR/pod.json, DIR/pod-table.md with --pod); checked before the run")
    private Path out;

    @Mixin
    private PodOptions pod;

    @Override
    public Integer call() throws IOException {
        FidelityConfig cfg = config();
        PodEvalConfig podConfig = pod.requested() ? pod.config() : null;
        if (out != null) {
            Check.outputDir(spec, "--out", out);
        }
        if (pod.groupingFile != null) {
            Check.inputFile(spec, "--pod-grouping", pod.groupingFile);
        }
        if (textsFile != null) {
            Check.inputFile(spec, "--texts", textsFile);
        }
        LoadedModel m = modelFiles.load();
        EvalTextSet texts = textsFile == null ? EvalTextSet.load() : TextFile.read(textsFile, m.tokenizer());
        int total = Math.min(cfg.stories(), texts.stories().size());
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        boolean bar = !json && Progress.wanted(quiet);
        if (!pod.only) {
            FidelityReport report;
            try (Progress p = bar ? Progress.start(System.err, "fidelity", total, "texts") : Progress.NONE) {
                report = FidelityEval.run(m, texts, cfg, line -> {
                    p.step();
                    p.status(line.replaceAll(":.*", ""));
                });
            }
            stdout.print(json ? report.toJson() : report.table());
            stdout.flush();
            if (out != null) {
                Files.writeString(out.resolve("fidelity.json"), report.toJson());
                Files.writeString(out.resolve("fidelity-table.md"), report.table());
                for (Path p : report.writePlots(out)) {
                    err.println("wrote " + p);
                }
            }
        }
        if (podConfig != null) {
            PodReport podReport;
            try (Progress p = bar ? Progress.start(System.err, "PoD", total + 1, "steps") : Progress.NONE) {
                podReport = PodEvaluation.run(m, texts, cfg, podConfig, line -> p.step());
            }
            stdout.print(json ? podReport.toJson() : "\n" + podReport.table());
            if (out != null) {
                Files.writeString(out.resolve("pod.json"), podReport.toJson());
                Files.writeString(out.resolve("pod-table.md"), podReport.table());
            }
        }
        return 0;
    }

    private FidelityConfig config() {
        List<Double> fractions = new ArrayList<>();
        boolean dynamic = false;
        for (String b : budgets) {
            String t = b.trim().toLowerCase(Locale.ROOT);
            if (t.equals("dynamic")) {
                dynamic = true;
                continue;
            }
            boolean percent = t.endsWith("%");
            try {
                fractions.add(Double.parseDouble(percent ? t.substring(0, t.length() - 1) : t) / (percent ? 100 : 1));
            } catch (NumberFormatException e) {
                throw new UsageException("--budgets takes fractions such as 0.25 (or 25%) and 'dynamic', got '" + b
                        + "'");
            }
        }
        List<String> names = new ArrayList<>();
        for (String p : policies) {
            if (p.trim().equalsIgnoreCase("all")) {
                names.addAll(Policies.NAMES);
            } else {
                names.add(Check.choice(spec, "--policies", p, java.util.stream.Stream.concat(
                        Policies.NAMES.stream(), Policies.L2_VARIANTS.stream()).toList()));
            }
        }
        String att = Check.choice(spec, "--attention", attention, List.of("native", "java"));
        if (queryPrecision != Attention.QueryPrecision.EXACT && !att.equals("native")) {
            throw new UsageException("--query-precision " + queryPrecision.name().toLowerCase(Locale.ROOT)
                    + " needs --attention native (the java attention computes exactly)");
        }
        int n = stories != null ? stories : textsFile != null ? Integer.MAX_VALUE : FidelityConfig.DEFAULT_STORIES;
        if (n < 1) {
            throw new UsageException("--stories must be >= 1, got " + n);
        }
        return new FidelityConfig(n, continuation, minContext, maxContext != null ? maxContext
                : Integer.MAX_VALUE, window, fractions, dynamic, names, tokensPerBlock, att, pool, kernel,
                kvDtypes.stream().distinct().toList(), queryPrecision);
    }
}
