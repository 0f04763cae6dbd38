package io.kvslab.bench.cli;

import io.kvslab.KvSlabException;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.fidelity.FidelityConfig;
import io.kvslab.bench.eval.fidelity.FidelityEval;
import io.kvslab.bench.eval.fidelity.FidelityReport;
import io.kvslab.bench.eval.pod.PodEvaluation;
import io.kvslab.bench.eval.pod.PodReport;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.policy.Policies;
import io.kvslab.policy.WindowPooling;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code kvslab eval fidelity}: compression policies on the real model against the full cache. */
final class EvalCommand implements Command {
    @Override
    public String summary() {
        return "evaluate compression policies on the real model (eval fidelity)";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab eval fidelity [options]
                  Compresses each text's context with every policy and budget, teacher-forces the continuation and
                  compares with the full-cache run (docs/fidelity.md): mean KL, top-1 agreement, delta perplexity,
                  KV bytes kept, per-head output perturbation, and CriticalKV vs its base selection head by head.
                  --model FILE          llama2.c .bin or GGUF (default: $SHARED/models/stories260K.bin, SHARED =
                                        the kvslab.shared property or ../shared)
                  --tokenizer FILE      llama2.c tokenizer (default: $SHARED/models/tok512.bin for the default model)
                  --stories N           texts of the built-in set to use (default 16)
                  --continuation N      teacher-forced tokens after the context (default 64)
                  --min-context N       skip texts with a shorter context (default 64)
                  --max-context N       cut longer texts to N context tokens (default: no cut)
                  --window N            observation window of the SnapKV-family policies (default 16)
                  --budgets LIST        comma-separated fractions and/or 'dynamic' (default 0.1,0.25,0.5,dynamic)
                  --policies LIST       comma-separated names or 'all' (default all: %s)
                  --pool max|avg        pooling of the SnapKV-family window scores (default max)
                  --kernel N            pooling kernel, odd (default 7; 1 = no pooling)
                  --tokens-per-block N  store block size (default 8)
                  --attention NAME      native (the library kernel, default) or java (plain Java over the rows)
                  --json                print the report as JSON instead of tables
                  --out DIR             also write DIR/fidelity.json, DIR/fidelity-table.md and the PNG plots
                                        (and DIR/pod.json, DIR/pod-table.md with --pod)
                %s""".formatted(String.join(", ", Policies.NAMES), PodOptions.USAGE);
    }

    @Override
    public int run(String[] argv) throws UsageException {
        Args a = new Args(argv, Set.of("json", "help", "pod", "pod-only"));
        if (a.flag("help")) {
            System.out.println(usage());
            return 0;
        }
        List<String> pos = a.positional();
        if (pos.size() != 1 || !pos.get(0).equals("fidelity")) {
            throw new UsageException("expected the evaluation name 'fidelity', got " + pos);
        }
        Path shared = Path.of(System.getProperty("kvslab.shared", "../shared"));
        String modelArg = a.string("model", null);
        Path model = modelArg != null ? Path.of(modelArg) : shared.resolve("models/stories260K.bin");
        String tokArg = a.string("tokenizer", null);
        Path tokenizer = tokArg != null ? Path.of(tokArg)
                : modelArg == null ? shared.resolve("models/tok512.bin") : null;
        int stories = a.intValue("stories", FidelityConfig.DEFAULT_STORIES, 1, 100_000);
        int continuation = a.intValue("continuation", FidelityConfig.DEFAULT_CONTINUATION, 2, 1 << 20);
        int minContext = a.intValue("min-context", FidelityConfig.DEFAULT_MIN_CONTEXT, 1, 1 << 20);
        int maxContext = a.intValue("max-context", Integer.MAX_VALUE, 1, Integer.MAX_VALUE);
        int window = a.intValue("window", FidelityConfig.DEFAULT_WINDOW, 1, 1 << 20);
        String budgetsArg = a.string("budgets", "0.1,0.25,0.5,dynamic");
        String policiesArg = a.string("policies", "all");
        int tpb = a.intValue("tokens-per-block", FidelityConfig.DEFAULT_TOKENS_PER_BLOCK, 1, 65536);
        String attention = a.string("attention", "native");
        String pool = a.string("pool", "max");
        int kernel = a.intValue("kernel", 7, 1, 1 << 16);
        boolean json = a.flag("json");
        String out = a.string("out", null);
        PodOptions.Request pod = PodOptions.read(a);
        a.finish();

        List<Double> fractions = new ArrayList<>();
        boolean dynamic = false;
        for (String b : budgetsArg.split(",")) {
            String t = b.trim().toLowerCase(Locale.ROOT);
            if (t.equals("dynamic")) {
                dynamic = true;
                continue;
            }
            try {
                fractions.add(Double.parseDouble(t.endsWith("%") ? t.substring(0, t.length() - 1) : t)
                        / (t.endsWith("%") ? 100 : 1));
            } catch (NumberFormatException e) {
                throw new UsageException("--budgets takes fractions such as 0.25 (or 25%) and 'dynamic', got '" + b
                        + "'");
            }
        }
        List<String> policies = policiesArg.equals("all") ? Policies.NAMES
                : List.of(policiesArg.split(",")).stream().map(String::trim).toList();
        FidelityConfig cfg;
        try {
            WindowPooling pooling = switch (pool) {
                case "max" -> WindowPooling.MAX;
                case "avg" -> WindowPooling.AVG;
                default -> throw new UsageException("--pool takes max or avg, got '" + pool + "'");
            };
            cfg = new FidelityConfig(stories, continuation, minContext, maxContext, window, fractions, dynamic,
                    policies, tpb, attention, pooling, kernel);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        try {
            LoadedModel m = LoadedModel.load(model, tokenizer);
            if (pod == null || !pod.only()) {
                FidelityReport report = FidelityEval.run(m, EvalTextSet.load(), cfg,
                        line -> System.err.println("kvslab eval fidelity: " + line));
                System.out.print(json ? report.toJson() : report.table());
                if (out != null) {
                    Path dir = Path.of(out);
                    Files.createDirectories(dir);
                    Files.writeString(dir.resolve("fidelity.json"), report.toJson());
                    Files.writeString(dir.resolve("fidelity-table.md"), report.table());
                    for (Path p : report.writePlots(dir)) {
                        System.err.println("kvslab eval fidelity: wrote " + p);
                    }
                }
            }
            if (pod != null) {
                PodReport podReport = PodEvaluation.run(m, EvalTextSet.load(), cfg, pod.config(),
                        line -> System.err.println("kvslab eval fidelity: " + line));
                System.out.print(json ? podReport.toJson() : "\n" + podReport.table());
                if (out != null) {
                    Path dir = Path.of(out);
                    Files.createDirectories(dir);
                    Files.writeString(dir.resolve("pod.json"), podReport.toJson());
                    Files.writeString(dir.resolve("pod-table.md"), podReport.table());
                }
            }
            return 0;
        } catch (KvSlabException | IllegalArgumentException | IOException | java.io.UncheckedIOException e) {
            System.err.println("kvslab eval fidelity: " + e.getMessage());
            return 1;
        }
    }
}
