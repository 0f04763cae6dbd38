package io.kvslab.bench.cli;

import io.kvslab.KvSlabException;
import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.LayerSimilarity;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code kvslab pod calibrate}: PoD's offline layer grouping for a model, saved as a small file next to it. */
final class PodCommand implements Command {
    @Override
    public String summary() {
        return "calibrate PoD's head-wise layer grouping for a model (pod calibrate)";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab pod calibrate [options]
                  Measures the attention similarity (1 - Jensen-Shannon, base 2) of every pair of layers per KV head on
                  calibration stories the model samples itself (seeds 1001..), groups the layers greedily bottom-up
                  (a layer joins the group while its similarity to the group's lowest layer is >= delta), prints the
                  similarities and groups, and writes the grouping file (docs/pod.md).
                  --model FILE      llama2.c .bin or GGUF (default: $SHARED/models/stories260K.bin)
                  --tokenizer FILE  llama2.c tokenizer (default: $SHARED/models/tok512.bin for the default model)
                  --delta X         similarity threshold in [0, 1] (default 0.5)
                  --texts N         calibration stories (default 8)
                  --queries N       last positions per story whose attention is compared (default 64)
                  --out FILE        where to write the grouping (default: next to the model, <model>.pod-groups)""";
    }

    @Override
    public int run(String[] argv) throws UsageException {
        Args a = new Args(argv, Set.of("help"));
        if (a.flag("help")) {
            System.out.println(usage());
            return 0;
        }
        List<String> pos = a.positional();
        if (pos.size() != 1 || !pos.get(0).equals("calibrate")) {
            throw new UsageException("expected the action 'calibrate', got " + pos);
        }
        Path shared = Path.of(System.getProperty("kvslab.shared", "../shared"));
        String modelArg = a.string("model", null);
        Path model = modelArg != null ? Path.of(modelArg) : shared.resolve("models/stories260K.bin");
        String tokArg = a.string("tokenizer", null);
        Path tokenizer = tokArg != null ? Path.of(tokArg)
                : modelArg == null ? shared.resolve("models/tok512.bin") : null;
        double delta = a.doubleValue("delta", 0.5, 0, 1);
        int texts = a.intValue("texts", PodCalibration.DEFAULT_TEXTS, 1, 10_000);
        int queries = a.intValue("queries", PodCalibration.DEFAULT_QUERIES, 1, 1 << 20);
        String outArg = a.string("out", null);
        a.finish();
        Path out = outArg != null ? Path.of(outArg) : LayerGrouping.besideModel(model);
        try {
            LoadedModel m = LoadedModel.load(model, tokenizer);
            LayerSimilarity sim = PodCalibration.measure(m.model(), PodCalibration.texts(m, texts), queries);
            LayerGrouping g = PodCalibration.group(sim, m.model(), delta);
            double[][][] s = sim.kvHeadMatrix();
            for (int h = 0; h < s.length; h++) {
                System.out.println("KV head " + h + " similarity (1 - JS):");
                for (double[] row : s[h]) {
                    StringBuilder sb = new StringBuilder("  ");
                    for (double v : row) {
                        sb.append(String.format(Locale.ROOT, " %.3f", v));
                    }
                    System.out.println(sb);
                }
            }
            System.out.println("groups at delta " + delta + ": " + g.describeGroups());
            g.save(out);
            System.out.println("wrote " + out);
            return 0;
        } catch (KvSlabException | IllegalArgumentException | UncheckedIOException e) {
            System.err.println("kvslab pod: " + e.getMessage());
            return 1;
        }
    }
}
