package io.kvslab.bench.eval.fidelity;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PngChartTest {
    @Test
    void ticksAreRoundValuesInsideTheRange() {
        assertEquals(List.of(10.0, 20.0, 30.0, 40.0, 50.0, 60.0), PngChart.linearTicks(9.2, 60.9));
        List<Double> t = PngChart.linearTicks(-0.01, 1.0);
        double[] expected = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
        assertEquals(expected.length, t.size());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], t.get(i), 1e-12);
        }
        // 5e-4 .. 0.3 in log10 units: 1, 2, 5 x 10^k
        List<Double> log = PngChart.logTicks(Math.log10(5e-4), Math.log10(0.3));
        assertEquals(Math.log10(5e-4), log.get(0), 1e-12);
        assertEquals(Math.log10(0.2), log.get(log.size() - 1), 1e-12);
        assertEquals(9, log.size());
    }

    @Test
    void drawsSeriesAsColouredLines(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.png");
        new PngChart("t", "x", "y", true)
                .add(new PngChart.Series("a", new double[]{1, 2, 3}, new double[]{0.1, 0.01, 0.001}))
                .add(new PngChart.Series("b", new double[]{1, 3}, new double[]{0.5, Double.NaN}))
                .write(f, 400, 300);
        BufferedImage img = ImageIO.read(f.toFile());
        assertEquals(400, img.getWidth());
        // the first series' colour appears in the plot area
        boolean found = false;
        for (int x = 80; x < 210 && !found; x++) {
            for (int y = 40; y < 240 && !found; y++) {
                found = (img.getRGB(x, y) & 0xffffff) == 0x1f77b4;
            }
        }
        assertEquals(true, found);
        assertNotEquals(0xffffff, img.getRGB(80, 40) & 0xffffff, "the plot frame is drawn");
        assertThrows(IllegalArgumentException.class, () -> new PngChart.Series("bad", new double[1], new double[2]));
    }
}
