package dev.pet.runtime.metrics;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.PetException;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.pet.onnx.io.AtomicFiles;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/** Draws the training (and eval) loss curve of a {@code metrics.jsonl} to a PNG with Java2D, headless. */
public final class LossCurvePlot {
    /** A point of a curve. */
    public record Point(double step, double loss) {
    }

    /** The curves read from a metrics file. */
    public record Curves(List<Point> train, List<Point> eval) {
        public Curves {
            train = List.copyOf(train);
            eval = List.copyOf(eval);
        }
    }

    /**
     * Axis ticks at round values: a spacing of 1, 2 or 5 times a power of ten (Heckbert's "nice numbers"), an axis
     * range widened to whole multiples of it, and labels with just the decimals the spacing needs.
     */
    public record Ticks(double min, double max, double spacing, int decimals) {
        /** About {@code target} ticks covering {@code [lo, hi]}. */
        public static Ticks covering(double lo, double hi, int target) {
            if (!(hi > lo)) {
                double half = lo == 0 ? 0.5 : Math.abs(lo) * 0.05;
                lo -= half;
                hi += half;
            }
            double spacing = nice((hi - lo) / Math.max(1, target - 1));
            double min = Math.floor(lo / spacing) * spacing;
            double max = Math.ceil(hi / spacing) * spacing;
            int decimals = Math.max(0, -(int) Math.floor(Math.log10(spacing) + 1e-9));
            return new Ticks(min, max, spacing, decimals);
        }

        /** The 1, 2 or 5 x 10^k nearest to {@code raw} (Heckbert's rounding thresholds 1.5, 3 and 7). */
        static double nice(double raw) {
            double power = Math.pow(10, Math.floor(Math.log10(raw)));
            double fraction = raw / power;
            double niceFraction = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
            return niceFraction * power;
        }

        /** The tick values from {@link #min} to {@link #max}. */
        public List<Double> values() {
            List<Double> v = new ArrayList<>();
            long n = Math.round((max - min) / spacing);
            for (long i = 0; i <= n; i++) {
                // Rounded to the label's precision so that 0.1 + 0.2 prints as 0.3.
                v.add(Double.parseDouble(label(min + i * spacing)));
            }
            return v;
        }

        /** A tick value as printed on the axis. */
        public String label(double value) {
            return String.format(Locale.ROOT, "%." + decimals + "f", value);
        }
    }

    private static final int MARGIN_LEFT = 70;
    private static final int MARGIN_RIGHT = 20;
    private static final int MARGIN_TOP = 36;
    private static final int MARGIN_BOTTOM = 50;

    private LossCurvePlot() {
    }

    /** Reads {@code loss} and {@code eval_loss} records; null (non-finite) and malformed lines are skipped. */
    public static Curves read(Path metricsJsonl) {
        ObjectMapper json = new ObjectMapper();
        List<Point> train = new ArrayList<>();
        List<Point> eval = new ArrayList<>();
        try (BufferedReader reader = Files.newBufferedReader(metricsJsonl, StandardCharsets.UTF_8)) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode node;
                try {
                    node = json.readTree(line);
                } catch (IOException e) {
                    continue;
                }
                if (node == null || !node.path("step").isNumber()) {
                    continue;
                }
                double step = node.get("step").asDouble();
                if (node.path("loss").isNumber()) {
                    train.add(new Point(step, node.get("loss").asDouble()));
                }
                if (node.path("eval_loss").isNumber()) {
                    eval.add(new Point(step, node.get("eval_loss").asDouble()));
                }
            }
        } catch (IOException e) {
            throw new PetException("cannot read " + metricsJsonl + ": " + e.getMessage(), e);
        }
        return new Curves(train, eval);
    }

    /** Renders the curves of {@code metricsJsonl} into {@code png} ({@code width} x {@code height} pixels). */
    public static void render(Path metricsJsonl, Path png, int width, int height) {
        Curves curves = read(metricsJsonl);
        if (curves.train().isEmpty() && curves.eval().isEmpty()) {
            throw new PetException(metricsJsonl + " has no loss records to plot");
        }
        write(draw(curves, width, height, metricsJsonl.toString()), png);
    }

    /** Draws the curves into an image. */
    public static BufferedImage draw(Curves curves, int width, int height, String title) {
        Objects.requireNonNull(curves, "curves");
        if (width < 200 || height < 150 || width > 10_000 || height > 10_000) {
            throw new IllegalArgumentException("plot size must be 200x150 .. 10000x10000, found " + width + "x" + height);
        }
        List<Point> all = new ArrayList<>(curves.train());
        all.addAll(curves.eval());
        double minX = all.stream().mapToDouble(Point::step).min().orElse(0);
        double maxX = all.stream().mapToDouble(Point::step).max().orElse(1);
        double minY = all.stream().mapToDouble(Point::loss).min().orElse(0);
        double maxY = all.stream().mapToDouble(Point::loss).max().orElse(1);
        Ticks xTicks = Ticks.covering(minX, Math.max(maxX, minX + 1), 6);
        if (xTicks.spacing() < 1) { // steps are whole numbers
            xTicks = new Ticks(Math.floor(xTicks.min()), Math.ceil(xTicks.max()), 1, 0);
        }
        Ticks yTicks = Ticks.covering(minY, maxY, 6);
        minX = xTicks.min();
        maxX = xTicks.max();
        minY = yTicks.min();
        maxY = yTicks.max();

        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            int plotW = width - MARGIN_LEFT - MARGIN_RIGHT;
            int plotH = height - MARGIN_TOP - MARGIN_BOTTOM;
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            FontMetrics fm = g.getFontMetrics();
            for (double v : yTicks.values()) {
                int y = (int) Math.round(MARGIN_TOP + plotH - (v - minY) / (maxY - minY) * plotH);
                g.setColor(new Color(0xE5E5E5));
                g.drawLine(MARGIN_LEFT, y, MARGIN_LEFT + plotW, y);
                g.setColor(Color.DARK_GRAY);
                String label = yTicks.label(v);
                g.drawString(label, MARGIN_LEFT - 6 - fm.stringWidth(label), y + fm.getAscent() / 2);
            }
            for (double v : xTicks.values()) {
                int x = (int) Math.round(MARGIN_LEFT + (v - minX) / (maxX - minX) * plotW);
                g.setColor(new Color(0xE5E5E5));
                g.drawLine(x, MARGIN_TOP, x, MARGIN_TOP + plotH);
                g.setColor(Color.DARK_GRAY);
                String label = xTicks.label(v);
                g.drawString(label, x - fm.stringWidth(label) / 2, MARGIN_TOP + plotH + fm.getHeight() + 2);
            }
            g.setColor(Color.BLACK);
            g.drawRect(MARGIN_LEFT, MARGIN_TOP, plotW, plotH);
            g.drawString("step", MARGIN_LEFT + plotW / 2 - fm.stringWidth("step") / 2, height - 10);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
            g.drawString("loss  " + title, MARGIN_LEFT, MARGIN_TOP - 14);

            g.setStroke(new BasicStroke(1.6f));
            plot(g, curves.train(), new Color(0x1F77B4), minX, maxX, minY, maxY, plotW, plotH);
            g.setStroke(new BasicStroke(2.2f));
            plot(g, curves.eval(), new Color(0xD62728), minX, maxX, minY, maxY, plotW, plotH);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            legend(g, width - MARGIN_RIGHT - 110, MARGIN_TOP + 8, new Color(0x1F77B4), "train loss");
            if (!curves.eval().isEmpty()) {
                legend(g, width - MARGIN_RIGHT - 110, MARGIN_TOP + 24, new Color(0xD62728), "eval loss");
            }
        } finally {
            g.dispose();
        }
        return image;
    }

    private static void plot(Graphics2D g, List<Point> points, Color color, double minX, double maxX, double minY,
                             double maxY, int plotW, int plotH) {
        if (points.isEmpty()) {
            return;
        }
        g.setColor(color);
        Path2D.Double path = new Path2D.Double();
        for (int i = 0; i < points.size(); i++) {
            double x = MARGIN_LEFT + (points.get(i).step() - minX) / (maxX - minX) * plotW;
            double y = MARGIN_TOP + plotH - (points.get(i).loss() - minY) / (maxY - minY) * plotH;
            if (i == 0) {
                path.moveTo(x, y);
            } else {
                path.lineTo(x, y);
            }
            if (points.size() < 50) {
                g.fillOval((int) x - 2, (int) y - 2, 5, 5);
            }
        }
        g.draw(path);
    }

    private static void legend(Graphics2D g, int x, int y, Color color, String label) {
        g.setColor(color);
        g.fillRect(x, y - 4, 14, 4);
        g.setColor(Color.BLACK);
        g.drawString(label, x + 20, y);
    }

    private static void write(BufferedImage image, Path png) {
        try {
            AtomicFiles.writeStream(png, out -> {
                if (!ImageIO.write(image, "png", out)) {
                    throw new PetException("no PNG writer available");
                }
            });
        } catch (IOException e) {
            throw new PetException("cannot write " + png + ": " + e.getMessage(), e);
        }
    }
}
