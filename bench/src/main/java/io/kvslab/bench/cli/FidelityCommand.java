package io.kvslab.bench.cli;

import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.fidelity.FidelityConfig;
import io.kvslab.bench.eval.fidelity.FidelityEval;
import io.kvslab.bench.eval.fidelity.FidelityReport;
import io.kvslab.bench.eval.pod.PodEvalConfig;
import io.kvslab.bench.eval.pod.PodEvaluation;
import io.kvslab.bench.eval.pod.PodReport;
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
                "The defaults (stories260K, 16 texts) take about 40 s on 2 cores (38 s of evaluation unloaded)."})
final class FidelityCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Mixin
    private ModelFiles modelFiles;

    @Option(names = "--stories", paramLabel = "N", defaultValue = "" + FidelityConfig.DEFAULT_STORIES,
            description = "texts of the built-in set to use (default ${DEFAULT-VALUE})")
    private int stories;

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
            description = "fractions (0.25 or 25%) and/or 'dynamic' (default ${DEFAULT-VALUE})")
    private List<String> budgets;

    @Option(names = "--policies", paramLabel = "LIST", split = ",", defaultValue = "all",
            description = "policy names or 'all' (default all: streamingllm, knorm, snapkv, adakv, pyramidkv, "
                    + "criticalkv, criticaladakv)")
    private List<String> policies;

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
        LoadedModel m = modelFiles.load();
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        boolean bar = !json && Progress.wanted(quiet);
        if (!pod.only) {
            FidelityReport report;
            try (Progress p = bar ? Progress.start(System.err, "fidelity", cfg.stories(), "texts") : Progress.NONE) {
                report = FidelityEval.run(m, EvalTextSet.load(), cfg, line -> {
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
            try (Progress p = bar ? Progress.start(System.err, "PoD", cfg.stories() + 1, "steps") : Progress.NONE) {
                podReport = PodEvaluation.run(m, EvalTextSet.load(), cfg, podConfig, line -> p.step());
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
                names.add(Check.choice(spec, "--policies", p, Policies.NAMES));
            }
        }
        String att = Check.choice(spec, "--attention", attention, List.of("native", "java"));
        return new FidelityConfig(stories, continuation, minContext, maxContext != null ? maxContext
                : Integer.MAX_VALUE, window, fractions, dynamic, names, tokensPerBlock, att, pool, kernel);
    }
}
