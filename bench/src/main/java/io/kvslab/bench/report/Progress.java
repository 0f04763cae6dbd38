package io.kvslab.bench.report;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.time.Duration;
import java.time.temporal.ChronoUnit;

/**
 * A progress bar with total, rate and ETA on stderr (me.tongfei progressbar), or nothing at all: {@link #NONE} when
 * the output is JSON, the user asked for quiet, or stderr is not a terminal. The long commands report through it.
 */
public final class Progress implements AutoCloseable {
    /** Draws nothing. */
    public static final Progress NONE = new Progress(null);

    private final ProgressBar bar;

    private Progress(ProgressBar bar) {
        this.bar = bar;
    }

    /** True when a bar would be seen: a console is attached and the caller did not ask for quiet. */
    public static boolean wanted(boolean quiet) {
        return !quiet && System.console() != null && System.console().isTerminal();
    }

    /** A bar of {@code total} {@code unit}s on {@code out}, or {@link #NONE} when {@code out} is null. */
    public static Progress start(PrintStream out, String task, long total, String unit) {
        if (out == null) {
            return NONE;
        }
        ProgressBar bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(Math.max(total, 1))
                .setUnit(" " + unit, 1).setStyle(ProgressBarStyle.ASCII).showSpeed()
                .setSpeedUnit(ChronoUnit.SECONDS).setUpdateIntervalMillis(250).setMaxRenderedLength(110)
                .setConsumer(new ConsoleProgressBarConsumer(out, 110)).build();
        return new Progress(bar);
    }

    /** Sets how much is done. */
    public void stepTo(long done) {
        if (bar != null) {
            bar.stepTo(done);
        }
    }

    /** One more unit done. */
    public void step() {
        if (bar != null) {
            bar.step();
        }
    }

    /** A short status shown after the bar (e.g. live bytes). */
    public void status(String text) {
        if (bar != null) {
            bar.setExtraMessage(" " + text);
        }
    }

    /** Time elapsed since the start, for callers that report it. */
    public Duration elapsed() {
        return bar == null ? Duration.ZERO : bar.getTotalElapsed();
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
