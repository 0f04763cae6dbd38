package io.kvslab.bench.eval.pod;

import io.kvslab.pod.LayerSimilarity;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;

import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Heat maps of PoD's layer similarities (1 - JS), one panel per KV head, layers labelled on both axes, each cell
 * showing its value on a fixed 0..1 scale (so panels compare), as one PNG.
 */
public final class SimilarityPlot {
    private SimilarityPlot() {}

    public static void write(LayerSimilarity similarity, String modelName, Path path) throws IOException {
        System.setProperty("java.awt.headless", "true");
        double[][][] m = similarity.kvHeadMatrix();
        List<HeatMapChart> charts = new ArrayList<>();
        for (int h = 0; h < m.length; h++) {
            int layers = m[h].length;
            int side = Math.max(360, 70 * layers + 160);
            HeatMapChart c = new HeatMapChartBuilder().width(side).height(side - 40)
                    .title(modelName + ": KV head " + h + ", similarity 1 - JS").xAxisTitle("layer")
                    .yAxisTitle("layer").build();
            c.getStyler().setShowValue(layers <= 16).setHeatMapValueDecimalPattern("0.00").setMin(0).setMax(1)
                    .setRangeColors(new Color[] {new Color(0xF7FBFF), new Color(0x9ECAE1), new Color(0x4292C6)})
                    .setValueFontColor(Color.BLACK).setChartBackgroundColor(Color.WHITE);
            List<String> labels = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                labels.add("L" + l);
            }
            List<Number[]> cells = new ArrayList<>();
            for (int i = 0; i < layers; i++) {
                for (int j = 0; j < layers; j++) {
                    cells.add(new Number[] {i, j, Double.parseDouble(String.format(Locale.ROOT, "%.4f", m[h][i][j]))});
                }
            }
            c.addSeries("1 - JS", labels, labels, cells);
            charts.add(c);
        }
        int cols = Math.min(2, charts.size());
        int rows = (charts.size() + cols - 1) / cols;
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(path)) {
            BitmapEncoder.saveBitmap(charts, rows, cols, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }
}
