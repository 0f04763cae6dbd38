package io.kvslab.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** The shared plotting helpers: merged legends, tick labels, and a PNG that decodes. */
class ChartsTest {
    @Test
    void seriesWithIdenticalPointsShareOneEntryInFirstSeenOrder() {
        Map<String, Charts.Points> in = new LinkedHashMap<>();
        in.put("snapkv", new Charts.Points(new double[] {10, 25}, new double[] {0.9, 0.95}));
        in.put("knorm", new Charts.Points(new double[] {10, 25}, new double[] {0.5, 0.7}));
        in.put("criticalkv", new Charts.Points(new double[] {10, 25}, new double[] {0.9, 0.95}));
        in.put("adakv", new Charts.Points(new double[] {10, 25}, new double[] {0.9, 0.96}));
        Map<String, Charts.Points> out = Charts.mergeIdentical(in);
        assertEquals(List.of("snapkv = criticalkv", "knorm", "adakv"), List.copyOf(out.keySet()));
        assertEquals(0.96, out.get("adakv").y()[1]);
    }

    @Test
    void tokenCountsAndNumbersReadAsPeopleWriteThem() {
        assertEquals("4k", Charts.tokens(4096));
        assertEquals("32k", Charts.tokens(32768));
        assertEquals("1M", Charts.tokens(1 << 20));
        assertEquals("512", Charts.tokens(512));
        assertEquals("10k", Charts.tokens(10_000));
        assertEquals("0.01", Charts.plain(0.01));
        assertEquals("10", Charts.plain(10.0));
        assertEquals("2.5", Charts.plain(2.5));
    }

    @Test
    void aChartIsWrittenAsAPngThatDecodes(@TempDir Path dir) throws Exception {
        XYChart chart = new XYChartBuilder().width(400).height(300).title("t").build();
        chart.getStyler().setYAxisLogarithmic(true);
        chart.addSeries("a", new double[] {1, 2, 3}, new double[] {0.1, 0.01, 0.001});
        Path png = dir.resolve("sub/a.png");
        Charts.writePng(chart, png);
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img);
        assertEquals(400, img.getWidth());
        assertEquals(300, img.getHeight());
    }
}
