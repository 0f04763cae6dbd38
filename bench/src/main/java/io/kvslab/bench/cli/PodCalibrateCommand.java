package io.kvslab.bench.cli;

import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.eval.pod.SimilarityPlot;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.LayerSimilarity;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code kvslab pod calibrate}: measures the layer similarities and writes the grouping file into the current
 * directory (or {@code --out}), never beside the model: model folders are often read-only or shared.
 */
@Command(name = "calibrate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measure the attention similarity (1 - Jensen-Shannon, base 2) of every pair of layers per KV "
                + "head on calibration stories the model samples itself (seeds 1001..), group the layers greedily "
                + "bottom-up (a layer joins the group while its similarity to the group's lowest layer is >= delta), "
                + "print the similarities and groups, and write the grouping file (docs/pod.md).",
                "The defaults (stories260K) take about 10 s (7 s of calibration unloaded)."})
final class PodCalibrateCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Mixin
    private ModelFiles modelFiles;

    @Option(names = "--delta", paramLabel = "X", defaultValue = "0.5",
            description = "similarity threshold in [0, 1] (default ${DEFAULT-VALUE})")
    private double delta;

    @Option(names = "--texts", paramLabel = "N", defaultValue = "" + PodCalibration.DEFAULT_TEXTS,
            description = "calibration stories (default ${DEFAULT-VALUE})")
    private int texts;

    @Option(names = "--queries", paramLabel = "N", defaultValue = "" + PodCalibration.DEFAULT_QUERIES,
            description = "last positions per story whose attention is compared (default ${DEFAULT-VALUE})")
    private int queries;

    @Option(names = "--out", paramLabel = "FILE", description = "where to write the grouping (default: "
            + "<model file name>.pod-groups in the current directory)")
    private Path out;

    @Option(names = "--plot", paramLabel = "FILE.png", description = "also write heat maps of the similarities "
            + "(one panel per KV head, layers labelled)")
    private Path plot;

    @Override
    public Integer call() throws java.io.IOException {
        Check.range(spec, "--delta", delta, 0, 1);
        Check.range(spec, "--texts", texts, 1, 10_000);
        Check.range(spec, "--queries", queries, 1, 1 << 20);
        Path target = out != null ? out : Path.of(modelFiles.model().getFileName() + ".pod-groups");
        Check.outputFile(spec, "--out", target);
        if (plot != null) {
            Check.outputFile(spec, "--plot", plot);
        }
        LoadedModel m = modelFiles.load();
        LayerSimilarity sim = PodCalibration.measure(m.model(), PodCalibration.texts(m, texts), queries);
        LayerGrouping g = PodCalibration.group(sim, m.model(), delta);
        PrintWriter o = spec.commandLine().getOut();
        double[][][] s = sim.kvHeadMatrix();
        for (int h = 0; h < s.length; h++) {
            o.println("KV head " + h + " similarity (1 - JS), rows and columns = layers 0.." + (s[h].length - 1) + ":");
            for (double[] row : s[h]) {
                StringBuilder sb = new StringBuilder("  ");
                for (double v : row) {
                    sb.append(String.format(Locale.ROOT, " %.3f", v));
                }
                o.println(sb);
            }
        }
        o.println("groups at delta " + delta + ": " + g.describeGroups());
        g.save(target);
        o.println("wrote " + target);
        if (plot != null) {
            SimilarityPlot.write(sim, modelFiles.model().getFileName().toString(), plot);
            o.println("wrote " + plot);
        }
        return 0;
    }
}
